//! The renditions every photo gets, largest first. Apps ask for them by name.

pub struct RenditionSize {
    pub name: &'static str,
    pub width: u32,
    pub height: u32,
}

pub const RENDITIONS: [RenditionSize; 3] = [
    RenditionSize {
        name: "large",
        width: 480,
        height: 600,
    },
    RenditionSize {
        name: "medium",
        width: 240,
        height: 300,
    },
    RenditionSize {
        name: "small",
        width: 96,
        height: 120,
    },
];

pub fn by_name(name: &str) -> Option<&'static RenditionSize> {
    RENDITIONS.iter().find(|r| r.name == name)
}
