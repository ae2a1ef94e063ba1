//! Poll jobs made in the browser: one JSON document under `data_dir`
//! (`jobs.json`, versioned, mode 0600 as it may hold passwords), each job a
//! `[[poll]]` as the file would say it. The daemon runs the file's
//! configuration joined with them ([`Config::with_browser_jobs`]): each is
//! checked exactly as a `[[poll]]`, and one that no longer passes (a name
//! the file took since) is left out and said, never the whole config.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[cfg(test)]
use super::poll::Origin;
use super::poll::RawPoll;
use super::{Config, KeyError};

pub const FILE_NAME: &str = "jobs.json";
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Document {
    version: u32,
    jobs: Vec<RawPoll>,
}

/// Where the document of `data_dir` is.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

/// The jobs stored under `data_dir`; none when there is no document. A
/// document that cannot be read as one is an error naming why (the
/// caller sets it aside: the daemon must start without it).
pub fn read(data_dir: &Path) -> Result<Vec<RawPoll>, String> {
    let bytes = match std::fs::read(path(data_dir)) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read: {e}")),
    };
    let doc: Document = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    if doc.version != VERSION {
        return Err(format!("version {} unknown", doc.version));
    }
    Ok(doc.jobs)
}

/// The document holding `jobs`, as written to `jobs.json`.
pub fn encode(jobs: &[RawPoll]) -> Vec<u8> {
    let doc = Document {
        version: VERSION,
        jobs: jobs.to_vec(),
    };
    serde_json::to_vec_pretty(&doc).unwrap_or_default()
}

impl Config {
    /// This configuration (read from the file) with the jobs made in the
    /// browser: each checked as a `[[poll]]` is (problems keyed
    /// `jobs.json[i]…`), given its template, marked [`Origin::Browser`].
    /// A job that fails, or whose name the file's jobs have, is left out
    /// and its problems returned.
    pub fn with_browser_jobs(mut self, stored: &[RawPoll]) -> (Config, Vec<KeyError>) {
        let mut problems = Vec::new();
        super::validate::browser_jobs(&mut self, stored, &mut problems);
        (self, problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(name: &str, target: &str) -> RawPoll {
        toml::from_str(&format!(
            "name = \"{name}\"\nkind = \"munin\"\ntarget = \"{target}\"\ninterval = \"1m\""
        ))
        .unwrap()
    }

    #[test]
    fn stored_jobs_join_the_files_and_get_their_templates_first() {
        let config = Config::parse(
            "[[poll]]\nname = \"pi\"\nkind = \"ping\"\ntarget = \"127.0.0.1\"\n",
            "test",
        )
        .unwrap();
        let (joined, problems) = config.with_browser_jobs(&[job("nas", "10.0.0.5")]);
        assert!(problems.is_empty(), "{problems:?}");
        let names: Vec<(&str, Origin)> = joined
            .polls
            .iter()
            .map(|j| (j.name.as_str(), j.origin))
            .collect();
        assert_eq!(names, [("pi", Origin::Config), ("nas", Origin::Browser)]);
        assert_eq!(joined.templates[0].name, "poll:nas");
        assert_eq!(joined.templates[0].step_secs, 60);
        assert_eq!(joined.templates[0].topics, ["munin/10.0.0.5/#"]);
        assert!(joined.templates.iter().any(|t| t.name == "poll:pi"));
    }

    #[test]
    fn a_stored_job_that_fails_is_left_out_alone_with_its_keys() {
        let config = Config::parse(
            "[[poll]]\nname = \"pi\"\nkind = \"ping\"\ntarget = \"127.0.0.1\"\n",
            "test",
        )
        .unwrap();
        let mut bad = job("bad", "nas");
        bad.interval = Some(std::time::Duration::from_secs(7));
        let (joined, problems) =
            config.with_browser_jobs(&[job("pi", "10.0.0.5"), bad, job("ok", "nas")]);
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["jobs.json[0].name", "jobs.json[1].interval"]);
        let names: Vec<&str> = joined.polls.iter().map(|j| j.name.as_str()).collect();
        assert_eq!(names, ["pi", "ok"]);
    }

    #[test]
    fn the_document_reads_back_what_was_written_and_refuses_garbage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), Vec::new(), "no document yet");
        let mut with_secret = job("nas", "10.0.0.5");
        with_secret.password = Some("s3cret".into());
        let jobs = vec![with_secret, job("b", "pi")];
        std::fs::write(path(dir.path()), encode(&jobs)).unwrap();
        assert_eq!(read(dir.path()).unwrap(), jobs);
        std::fs::write(path(dir.path()), b"{\"version\": 9, \"jobs\": []}").unwrap();
        assert!(read(dir.path()).unwrap_err().contains("version 9"));
        std::fs::write(path(dir.path()), b"[1, 2").unwrap();
        assert!(read(dir.path()).is_err());
    }
}
