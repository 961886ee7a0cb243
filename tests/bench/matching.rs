//! Matching benchmark: indexes a roster of 100,000 people and matches 50,000 files against it
//! through every tier (exact ids, case ignored, leading zeros ignored, ids inside longer file
//! names, photographers' index rows by name and grade, and files that match no one), then
//! compares the rate with the image stage's own rate on one core in this process. Every file has
//! a known right answer: a file put on anyone else is counted and fails the run.
//!
//!   scripts/build-release.sh && target/release/match-bench [--people N] [--files N]

use std::time::Instant;

use anyhow::{Context as _, bail};
use pictureday_contract::events::{IndexEntry, LookupResult, MatchQuery};
use pictureday_imaging::{Config, Processor};
use pictureday_roster::matching::{DistrictIndex, PersonRecord, resolve};
use pictureday_roster::roster_csv::Role;
use pictureday_tests::images::{jpeg_q, photo};

const FIRST: [&str; 24] = [
    "Ada", "Ben", "Chloé", "Dev", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jo", "Kai", "Lea",
    "Mateo", "Nia", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tariq", "Uma", "Vik", "Wen", "Zoë",
];
const LAST: [&str; 40] = [
    "Ngo",
    "O'Brien",
    "Patel",
    "Stone",
    "Ruiz",
    "Kim",
    "Lee",
    "Peña",
    "Dupont-Martin",
    "Smith",
    "Young",
    "Ali",
    "Sen",
    "Okafor",
    "Nowak",
    "Haddad",
    "Ito",
    "Jensen",
    "Kowalski",
    "Lopez",
    "Mensah",
    "Nguyen",
    "Olsen",
    "Park",
    "Quispe",
    "Rossi",
    "Silva",
    "Tanaka",
    "Usman",
    "Varga",
    "Wang",
    "Xu",
    "Yilmaz",
    "Zhou",
    "Abbott",
    "Baker",
    "Costa",
    "Diaz",
    "Evans",
    "Fischer",
];

fn person(i: u32) -> PersonRecord {
    let i_usize = i as usize;
    PersonRecord {
        id: format!("p{i}"),
        role: Some(Role::Student),
        // Name, grade and homeroom vary at different rates, so some names repeat in a grade.
        first_name: FIRST[i_usize % FIRST.len()].into(),
        last_name: format!("{}{}", LAST[(i_usize / FIRST.len()) % LAST.len()], i / 960),
        student_number: Some(format!("{i:07}")),
        sis_id: Some(format!("SIS{i}AB")),
        email: Some(format!("student{i}@district.org")),
        grade: Some(format!("{:02}", i % 13)),
        homeroom: Some(format!("{}", 100 + i % 37)),
        ..PersonRecord::default()
    }
}

/// The file a vendor might send for person `i`, in the form `kind` picks.
fn file_for(i: u32, kind: u32) -> MatchQuery {
    let p = person(i);
    let id = |value: String, file_name| MatchQuery::Identifier { value, file_name };
    match kind {
        0 => id(format!("{i:07}"), true),
        1 => id(format!("sis{i}ab"), true),
        2 => id(i.to_string(), true),
        3 => id(format!("{i:07}_{}_{}", p.last_name, p.first_name), true),
        4 => MatchQuery::Name(IndexEntry {
            index: "MASTER.TXT".into(),
            row: i,
            last_name: p.last_name.to_uppercase(),
            first_name: p.first_name.to_uppercase(),
            grade: p.grade.clone(),
            homeroom: p.homeroom.clone(),
            ..IndexEntry::default()
        }),
        5 => id(format!("Student{i}@District.org"), false),
        _ => id(format!("Z{i}Q"), true),
    }
}

const USAGE: &str = "match-bench [--people 100000] [--files 50000]";

fn main() -> anyhow::Result<()> {
    pictureday_tests::bench_args::exit_on_help(USAGE);
    let mut people = 100_000u32;
    let mut files = 50_000u32;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--people" => people = value.parse()?,
            "--files" => files = value.parse()?,
            other => bail!("unknown flag {other}"),
        }
    }
    println!("matching benchmark: {files} files against {people} people, one core");

    let started = Instant::now();
    let index = DistrictIndex::build((0..people).map(person));
    let build = started.elapsed();

    let queries: Vec<(u32, MatchQuery)> = (0..files)
        .map(|n| {
            let i = n.wrapping_mul(2_654_435_761) % people;
            (i, file_for(i, n % 7))
        })
        .collect();
    let started = Instant::now();
    let (mut right, mut unmatched, mut wrong) = (0u32, 0u32, 0u32);
    for (i, query) in &queries {
        match resolve(&index, query) {
            LookupResult::Found { person_id, .. } if person_id.as_str() == format!("p{i}") => {
                right += 1
            }
            LookupResult::Found { person_id, .. } => {
                wrong += 1;
                eprintln!("WRONG: {query:?} went to {person_id}, not p{i}");
            }
            LookupResult::Unmatched { .. } => unmatched += 1,
        }
    }
    let matching = started.elapsed();
    let files_per_s = f64::from(files) / matching.as_secs_f64();

    // The image stage on one core, on a vendor-size photo, as the reference.
    let sample = jpeg_q(photo(640, 800, 7), 90)?;
    let mut processor = Processor::new(Config::default());
    let stage_n = 64u32;
    let started = Instant::now();
    for _ in 0..stage_n {
        processor
            .process(&sample)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let stage_per_s = f64::from(stage_n) / started.elapsed().as_secs_f64();

    println!(
        "index of {people} people built in: {:.2} s",
        build.as_secs_f64()
    );
    println!(
        "matched {files} files in {:.3} s: {files_per_s:.0} files/s",
        matching.as_secs_f64()
    );
    println!(
        "  right person {right}, unmatched {unmatched} (the files that match no one), wrong person {wrong}"
    );
    println!("image stage (640x800): {stage_per_s:.1} photos/s on one core");
    println!(
        "matching / image stage: {:.0}x (the matcher is not the bottleneck while this is well above 1)",
        files_per_s / stage_per_s
    );
    if wrong > 0 {
        bail!("{wrong} files went to the wrong person");
    }
    Ok(())
}
