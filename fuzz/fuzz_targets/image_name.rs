//! Image names (`NAME:TAG`): never panic; an accepted name is one safe path
//! component per part and prints back exactly as given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swarmhub_node::image::ImageName;

fuzz_target!(|text: &str| {
    match text.parse::<ImageName>() {
        Ok(name) => {
            assert_eq!(name.to_string(), text, "display differs from the input");
            for part in [&name.name, &name.tag] {
                assert!(!part.is_empty() && part != "." && part != "..");
                assert!(!part.contains(['/', '\\', ':', '\0']));
            }
            assert_eq!(name.to_string().parse::<ImageName>().as_ref(), Ok(&name));
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
