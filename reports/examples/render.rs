//! Write `report.html` and `charts/` for each folder given on the command
//! line: `cargo run -p swarmhub-reports --example render -- DIR...`.

fn main() -> std::process::ExitCode {
    let mut code = std::process::ExitCode::SUCCESS;
    for dir in std::env::args_os().skip(1) {
        match swarmhub_reports::write_report(std::path::Path::new(&dir)) {
            Ok(r) => println!("{}", r.html.display()),
            Err(e) => {
                eprintln!("error: {e}");
                code = std::process::ExitCode::FAILURE;
            }
        }
    }
    code
}
