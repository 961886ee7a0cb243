//! Deliveries as vendors really send them, through the public API: ids with zeros stripped, case
//! changed and names around them, matched without a mapping; a photographer's PSPA package
//! matched by name, grade, homeroom and teacher; and every file whose evidence points at two
//! people, or contradicts itself, left unmatched with a reason naming them.

use std::collections::BTreeMap;

use pictureday_tests::images::{jpeg, photo};
use pictureday_tests::{Backend, TestApp, zip_of};
use serde_json::Value;

on_each_backend!(
    a_vendor_delivery_is_matched_by_evidence,
    a_photographers_package_is_matched_by_name
);

/// (outcome, person's SIS id or "", matched_by or "", reason or "") of each file, by name.
async fn outcomes(
    app: &TestApp,
    token: &str,
    district: &str,
    job: &str,
) -> anyhow::Result<BTreeMap<String, (String, String, String, String)>> {
    let people = app
        .get_json(
            token,
            &format!("/v1/districts/{district}/people?limit=1000"),
        )
        .await?;
    let sis_of: BTreeMap<String, String> = people["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let id = p["id"].as_str().unwrap_or_default().to_owned();
            let sis = p["sis_id"]
                .as_str()
                .or(p["staff_id"].as_str())
                .unwrap_or_default()
                .to_owned();
            (id, sis)
        })
        .collect();
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    Ok(app
        .log(token, district, job)
        .await?
        .iter()
        .map(|row| {
            let person = row["person_id"]
                .as_str()
                .and_then(|p| sis_of.get(p))
                .cloned()
                .unwrap_or_default();
            (
                text(&row["file_name"]),
                (
                    text(&row["outcome"]),
                    person,
                    text(&row["matched_by"]),
                    text(&row["reason"]),
                ),
            )
        })
        .collect())
}

fn row(
    outcome: &str,
    sis: &str,
    matched_by: &str,
    reason: &str,
) -> (String, String, String, String) {
    (outcome.into(), sis.into(), matched_by.into(), reason.into())
}

const VENDOR_ROSTER: &str = "role,sis_id,student_number,first_name,last_name,grade,school\n\
student,S-1,3030,Dev,Patel,5,North\n\
student,3030,,Eli,Stone,5,North\n\
student,S-2,004521,Ana,Ruiz,4,North\n\
student,AB123,,Cy,Young,4,North\n\
student,S-3,5566,Siobhan,O'Brien,3,North\n\
student,S-4,2525,Lea,Ngo,3,North\n\
student,S-5,9911,Min,Lee,3,North\n\
student,S-6,0007788,Bo,Kim,2,North\n";

async fn a_vendor_delivery_is_matched_by_evidence(backend: Backend) -> anyhow::Result<()> {
    let app = TestApp::spawn(backend).await?;
    let token = app.create_district("springfield", "Springfield").await?;
    let (status, loaded) = app
        .upload_roster(&token, "springfield", VENDOR_ROSTER)
        .await?;
    assert_eq!((status, &loaded["created"]), (200, &8.into()), "{loaded}");

    let names = [
        "3030.jpg",
        "4521.jpg",
        "ab123.jpg",
        "7788.JPG",
        "5566_OBrien_Siobhan.jpg",
        "Ngo_Lea_2525.jpg",
        "9911_Smith_John.jpg",
        "2525_9911.jpg",
        "1234.jpg",
    ];
    let mut entries = Vec::new();
    for (n, name) in names.iter().enumerate() {
        entries.push((*name, jpeg(photo(300, 375, u32::try_from(n)?))?));
    }
    let job = app
        .import_archive(&token, "springfield", zip_of(&entries)?)
        .await?;
    let done = app.wait_for_job(&token, "springfield", &job).await?;
    assert_eq!(done["state"], "finished_with_errors", "{done}");
    assert_eq!(done["counts"]["files"], 9);
    assert_eq!(done["counts"]["matched"], 5);
    assert_eq!(done["counts"]["unmatched"], 4);
    assert_eq!(done["counts"]["applied"], 5);

    let expected: BTreeMap<String, _> = [
        (
            "3030.jpg",
            row(
                "unmatched",
                "",
                "",
                "3030 is the student number of Dev Patel and the SIS id of Eli Stone; make it unique in the roster or use a mapping CSV",
            ),
        ),
        (
            "4521.jpg",
            row("applied", "S-2", "student number, leading zeros ignored", ""),
        ),
        ("ab123.jpg", row("applied", "AB123", "SIS id, case ignored", "")),
        (
            "7788.JPG",
            row("applied", "S-6", "student number, leading zeros ignored", ""),
        ),
        (
            "5566_OBrien_Siobhan.jpg",
            row("applied", "S-3", "student number in the file name", ""),
        ),
        (
            "Ngo_Lea_2525.jpg",
            row("applied", "S-4", "student number in the file name", ""),
        ),
        (
            "9911_Smith_John.jpg",
            row(
                "unmatched",
                "",
                "",
                "the file name says Smith John but 9911 is the student number of Min Lee",
            ),
        ),
        (
            "2525_9911.jpg",
            row(
                "unmatched",
                "",
                "",
                "the file name holds the ids of two people: 2525 (Lea Ngo) and 9911 (Min Lee)",
            ),
        ),
        (
            "1234.jpg",
            row(
                "unmatched",
                "",
                "",
                "no person has 1234 as student number, SIS id, state id, staff id or email (case and leading zeros ignored)",
            ),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(outcomes(&app, &token, "springfield", &job).await?, expected);
    app.stop().await
}

const SCHOOL_ROSTER: &str = "role,sis_id,staff_id,first_name,last_name,grade,homeroom,teacher,school\n\
student,S1,,Lea,Ngo,05,101,Ms. Ruiz,Elm\n\
student,S2,,Lea,Ngo,7,201,Mr. Cole,Elm\n\
student,S3,,Sam,Lee,3,301,Ms. Ruiz,Elm\n\
student,S4,,Sam,Lee,3,302,Mr. Cole,Elm\n\
student,S5,,José,Peña,4,104,Ms. Ruiz,Elm\n\
staff,T1,T1,Ann,Ray,,,,Elm\n\
student,S6,,Ann,Ray,2,102,Mr. Cole,Elm\n\
student,S7,,Kim,Park,6,106,Mr. Cole,Elm\n";

/// A PSPA index row: volume, folder, image, grade, last, first, homeroom, period, teacher, track,
/// department, title, image size; `person` is grade, last, first, homeroom, teacher, department,
/// title.
fn pspa_row(image: &str, person: [&str; 7]) -> String {
    let [grade, last, first, homeroom, teacher, department, title] = person;
    format!(
        "CD1\tIMAGES\t{image}\t{grade}\t{last}\t{first}\t{homeroom}\t\t{teacher}\t\t{department}\t{title}\t640x800\r\n"
    )
}

async fn a_photographers_package_is_matched_by_name(backend: Backend) -> anyhow::Result<()> {
    let app = TestApp::spawn(backend).await?;
    let token = app.create_district("shelbyville", "Shelbyville").await?;
    let (status, loaded) = app
        .upload_roster(&token, "shelbyville", SCHOOL_ROSTER)
        .await?;
    assert_eq!((status, &loaded["created"]), (200, &8.into()), "{loaded}");

    // MASTER.TXT as photographers write it: no header, tabs, CRLF, upper case, Windows-1252.
    let mut master = String::new();
    master += &pspa_row("0001.JPG", ["05", "NGO", "LEA", "101", "", "", ""]);
    master += &pspa_row("0002.JPG", ["07", "NGO", "LEA", "", "", "", ""]);
    master += &pspa_row("0003.JPG", ["03", "LEE", "SAM", "302", "", "", ""]);
    master += &pspa_row("0004.JPG", ["03", "LEE", "SAM", "", "RUIZ", "", ""]);
    master += &pspa_row("0005.JPG", ["03", "LEE", "SAM", "", "", "", ""]);
    master += &pspa_row("0006.JPG", ["04", "PEÑA", "JOSÉ", "104", "RUIZ", "", ""]);
    master += &pspa_row(
        "0007.JPG",
        ["", "RAY", "ANN", "", "", "Counseling", "Counselor"],
    );
    master += &pspa_row("0008.JPG", ["06", "PARK", "KIM", "106", "", "", ""]);
    // The retake, later in MASTER.TXT.
    master += &pspa_row("0009.JPG", ["06", "PARK", "KIM", "106", "", "", ""]);
    master += &pspa_row("0099.JPG", ["05", "NGO", "LEA", "101", "", "", ""]);
    let master: Vec<u8> = master
        .chars()
        .map(|c| match c {
            'Ñ' => 0xD1,
            'É' => 0xC9,
            c => u8::try_from(c).unwrap_or(b'?'),
        })
        .collect();
    // INDEX.TXT beside it is the first delivery, without the retake: MASTER.TXT wins.
    let index = pspa_row("0001.JPG", ["06", "PARK", "KIM", "106", "", "", ""]).into_bytes();

    let mut entries: Vec<(String, Vec<u8>)> = vec![
        ("CD1/MASTER.TXT".into(), master),
        ("CD1/INDEX.TXT".into(), index),
        (
            "CD1/README.TXT".into(),
            b"Thank you for choosing us".to_vec(),
        ),
    ];
    for n in 1..=9u32 {
        entries.push((format!("CD1/IMAGES/{n:04}.JPG"), jpeg(photo(300, 375, n))?));
    }
    // An image the index does not list.
    entries.push(("CD1/IMAGES/0050.JPG".into(), jpeg(photo(300, 375, 50))?));
    let entries: Vec<(&str, Vec<u8>)> = entries
        .iter()
        .map(|(n, b)| (n.as_str(), b.clone()))
        .collect();
    let (status, accepted) = app
        .import(
            &token,
            "shelbyville",
            reqwest::multipart::Form::new().part(
                "archive",
                pictureday_tests::file_part("CD1.zip", zip_of(&entries)?),
            ),
        )
        .await?;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["files"], 10, "index and text files are not photos");
    let warnings: Vec<String> = accepted["warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| w.as_str().map(str::to_owned))
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("row 10") && w.contains("0099.JPG")),
        "the missing image is a warning: {warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("CD1/README.TXT")),
        "the text file is named: {warnings:?}"
    );
    let job = accepted["job_id"].as_str().unwrap_or_default().to_owned();
    let done = app.wait_for_job(&token, "shelbyville", &job).await?;
    assert_eq!(done["counts"]["files"], 10, "{done}");
    assert_eq!(done["counts"]["matched"], 8, "{done}");
    assert_eq!(done["counts"]["unmatched"], 2, "{done}");
    assert_eq!(done["counts"]["applied"], 8, "{done}");

    let mut got = outcomes(&app, &token, "shelbyville", &job).await?;
    // The first photo and its retake are both stored; which one is applied first depends on
    // timing, but the retake (later in the upload) is current in the end: checked below.
    let first = got.remove("CD1/IMAGES/0008.JPG");
    let retake = got.remove("CD1/IMAGES/0009.JPG");
    let outcome_pair = (
        first.as_ref().map(|r| r.0.as_str()),
        retake.as_ref().map(|r| r.0.as_str()),
    );
    assert!(
        matches!(
            outcome_pair,
            (Some("applied"), Some("replaced")) | (Some("superseded"), Some("applied"))
        ),
        "{first:?} {retake:?}"
    );
    for r in [&first, &retake] {
        assert_eq!(
            r.as_ref().map(|r| (r.1.as_str(), r.2.as_str())),
            Some(("S7", "name"))
        );
    }
    let expected: BTreeMap<String, _> = [
        ("0001.JPG", row("applied", "S1", "name and grade", "")),
        ("0002.JPG", row("applied", "S2", "name and grade", "")),
        ("0003.JPG", row("applied", "S4", "name, grade and homeroom", "")),
        ("0004.JPG", row("applied", "S3", "name, grade and teacher", "")),
        (
            "0005.JPG",
            row(
                "unmatched",
                "",
                "",
                "CD1/MASTER.TXT row 5: 2 people are named SAM LEE in grade 3: Sam Lee (grade 3, homeroom 301, SIS id S3) and Sam Lee (grade 3, homeroom 302, SIS id S4); add an id to the file name or use a mapping CSV",
            ),
        ),
        ("0006.JPG", row("applied", "S5", "name", "")),
        ("0007.JPG", row("applied", "T1", "name", "")),
        (
            "0050.JPG",
            row("unmatched", "", "", "not in the index (CD1/MASTER.TXT)"),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (format!("CD1/IMAGES/{k}"), v))
    .collect();
    assert_eq!(got, expected);

    // The retake is Kim Park's photo.
    let people = app
        .get_json(&token, "/v1/districts/shelbyville/people?sis_id=S7")
        .await?;
    let kim = people["items"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let versions = app
        .get_json(
            &token,
            &format!("/v1/districts/shelbyville/people/{kim}/photos"),
        )
        .await?;
    let current: Vec<&str> = versions
        .as_array()
        .or(versions["items"].as_array())
        .into_iter()
        .flatten()
        .filter(|v| v["current"] == true)
        .filter_map(|v| v["file_name"].as_str())
        .collect();
    assert_eq!(current, ["CD1/IMAGES/0009.JPG"]);
    app.stop().await
}
