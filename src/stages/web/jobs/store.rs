//! The poll jobs made in the browser, as the web UI keeps them: the list
//! as stored in `<data_dir>/jobs.json` (`config::browser_jobs` says its
//! format), written atomically and readable by the daemon alone (passwords),
//! then handed to the daemon, which joins them to the file's configuration
//! and starts, changes or stops each job. A save answers once the daemon has
//! applied it, so the page the admin lands on shows the job running.

use std::path::PathBuf;
use std::sync::RwLock;
use std::time::Duration;

use actix_web::web;
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use crate::config::browser_jobs;
use crate::config::poll::RawPoll;
use crate::web::WebError;

/// How long a save waits for the daemon to apply it (a reload of the
/// cache's file specs; milliseconds unless the cache task is stuck).
const APPLY_WAIT: Duration = Duration::from_secs(10);

/// The jobs made in the browser, for the daemon to run: it answers on
/// `applied` once the running configuration has them (a job it left out,
/// as a name the configuration file took since, it logs; the jobs page
/// says why that job does not run).
pub struct JobsSaved {
    pub jobs: Vec<RawPoll>,
    pub applied: oneshot::Sender<()>,
}

pub(crate) struct StoredJobs {
    path: PathBuf,
    jobs: RwLock<Vec<RawPoll>>,
    /// Held from a change to its hand-over: two admins saving at once must
    /// not leave the older list on disk or running.
    writing: tokio::sync::Mutex<()>,
    to_daemon: Option<mpsc::UnboundedSender<JobsSaved>>,
}

impl StoredJobs {
    /// The jobs the daemon started with (it read the document), and where
    /// to hand changes (`None`: nothing runs them, as in page tests).
    pub fn new(
        data_dir: &std::path::Path,
        jobs: Vec<RawPoll>,
        to_daemon: Option<mpsc::UnboundedSender<JobsSaved>>,
    ) -> StoredJobs {
        StoredJobs {
            path: browser_jobs::path(data_dir),
            jobs: RwLock::new(jobs),
            writing: tokio::sync::Mutex::const_new(()),
            to_daemon,
        }
    }

    pub fn all(&self) -> Vec<RawPoll> {
        self.jobs.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn get(&self, name: &str) -> Option<RawPoll> {
        self.all().into_iter().find(|j| j.name == name)
    }

    /// Applies `change` to the list, writes it, hands it to the daemon and
    /// waits until the daemon runs it. `change` says why it refuses (the
    /// list is then left as it was).
    pub async fn change(
        &self,
        change: impl FnOnce(&mut Vec<RawPoll>) -> Result<(), String>,
    ) -> Result<(), WebError> {
        let _one_writer = self.writing.lock().await;
        let mut next = self.all();
        change(&mut next).map_err(WebError::BadQuery)?;
        let bytes = browser_jobs::encode(&next);
        let path = self.path.clone();
        let written = web::block(move || crate::atomic_file::write_private(&path, &bytes)).await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(WebError::Storage(format!("jobs.json: {e}"))),
            Err(e) => return Err(WebError::Storage(e.to_string())),
        }
        *self.jobs.write().unwrap_or_else(|e| e.into_inner()) = next.clone();
        let Some(to_daemon) = &self.to_daemon else {
            return Ok(());
        };
        let (applied, answer) = oneshot::channel();
        if to_daemon
            .send(JobsSaved {
                jobs: next,
                applied,
            })
            .is_err()
        {
            return Err(WebError::Storage(
                "saved, but the daemon is stopping: the jobs run from its next start".into(),
            ));
        }
        match tokio::time::timeout(APPLY_WAIT, answer).await {
            Ok(Ok(())) => Ok(()),
            _ => {
                warn!("Poll jobs saved, but not applied within 10 s.");
                Err(WebError::Storage(
                    "saved, but the daemon did not apply it within 10 s: see its log".into(),
                ))
            }
        }
    }
}
