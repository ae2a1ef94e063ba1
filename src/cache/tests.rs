//! The cache task with paused tokio time and a stand-in for the RRD thread.
