//! `[[poll]]`: jobs that fetch values on a schedule. The same check runs
//! for a job made in the browser.

use std::collections::HashSet;
use std::time::Duration;

use super::Errors;
use crate::config::poll::{Origin, Patterns, PollJob, PollKind, RawPoll, Selection};

/// Echo requests per ping round, as `ping -c 5`.
const DEFAULT_PACKETS: u32 = 5;
/// The default interval, as munin's.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);
/// An interval must divide this, so that the job's archives (30 minutes,
/// 2 hours, a day) are whole numbers of its steps.
const INTERVAL_UNIT: u64 = 1800;
/// What `prometheus` profiles are built in (`poll::prometheus::profile`).
const PROMETHEUS_PROFILES: [&str; 1] = ["node"];
/// What `snmp` profiles are built in (`poll::snmp`).
const SNMP_PROFILES: [&str; 1] = ["if"];

/// The valid jobs, each name once.
pub(super) fn polls(raw: &[Option<RawPoll>], e: &mut Errors) -> Vec<PollJob> {
    let mut names = HashSet::new();
    raw.iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let key = format!("poll[{i}]");
            let job = poll(p.as_ref()?, &key, e)?;
            if !names.insert(job.name.clone()) {
                e.push(
                    format!("{key}.name"),
                    format!("duplicate job {:?}", job.name),
                );
            }
            Some(job)
        })
        .collect()
}

/// One job, its problems pushed under `key`; `None` when it cannot run.
pub(crate) fn poll(raw: &RawPoll, key: &str, e: &mut Errors) -> Option<PollJob> {
    let errors_before = e.0.len();
    if raw.name.is_empty()
        || raw.name.len() > 64
        || !raw
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        e.push(
            format!("{key}.name"),
            "must be 1 to 64 letters, digits, '_' or '-'",
        );
    }
    let (host, port, path) = match target(raw.kind, &raw.target) {
        Ok(t) => t,
        Err(why) => {
            e.push(format!("{key}.target"), why);
            (String::new(), 0, String::new())
        }
    };
    let https = raw.kind == PollKind::Prometheus && raw.target.starts_with("https://");
    if let Some(ca) = &raw.ca_file {
        if !https {
            e.push(
                format!("{key}.ca_file"),
                "only https targets (prometheus) use a ca_file",
            );
        } else if let Err(err) = crate::tls::client_config(Some(ca)) {
            e.push(format!("{key}.ca_file"), err.to_string());
        }
    }
    let interval = raw.interval.unwrap_or(DEFAULT_INTERVAL);
    if interval.subsec_nanos() != 0
        || interval.as_secs() < 10
        || !INTERVAL_UNIT.is_multiple_of(interval.as_secs().max(1))
    {
        e.push(
            format!("{key}.interval"),
            "must be whole seconds that divide 30m (10s, 15s, 30s, 1m, 2m, 5m, 10m, 15m, 30m…)",
        );
    }
    let timeout = raw
        .timeout
        .unwrap_or_else(|| (interval / 2).min(Duration::from_secs(30)));
    if timeout < Duration::from_millis(100) || timeout >= interval {
        e.push(
            format!("{key}.timeout"),
            "must be at least 100ms and shorter than the interval",
        );
    }
    let prefix = raw
        .prefix
        .clone()
        .unwrap_or_else(|| format!("{}/{}", raw.kind, host));
    if !valid_prefix(&prefix) {
        e.push(
            format!("{key}.prefix"),
            "must be topic levels without '+', '#' or empty levels, at most 128 bytes",
        );
    }
    let select = Selection {
        include: patterns(&raw.include, &format!("{key}.include"), e),
        exclude: patterns(&raw.exclude, &format!("{key}.exclude"), e),
    };
    let labels = raw
        .labels
        .iter()
        .map(|(label, re)| {
            let key = format!("{key}.labels.{label}");
            (label.clone(), patterns(std::slice::from_ref(re), &key, e))
        })
        .collect();
    if raw.kind != PollKind::Prometheus && !raw.labels.is_empty() {
        e.push(format!("{key}.labels"), "only prometheus jobs have labels");
    }
    if let Some(profile) = &raw.profile {
        let known: &[&str] = match raw.kind {
            PollKind::Prometheus => &PROMETHEUS_PROFILES,
            PollKind::Snmp => &SNMP_PROFILES,
            PollKind::Munin | PollKind::Ping => &[],
        };
        if !known.contains(&profile.as_str()) {
            e.push(
                format!("{key}.profile"),
                format!("{} jobs know the profiles {known:?}", raw.kind),
            );
        }
    }
    let credentials = credentials(raw, key, e);
    let packets = raw.packets.unwrap_or(DEFAULT_PACKETS);
    if raw.kind != PollKind::Ping && raw.packets.is_some() {
        e.push(format!("{key}.packets"), "only ping jobs send packets");
    } else if !(1..=100).contains(&packets) {
        e.push(format!("{key}.packets"), "must be between 1 and 100");
    }
    if raw.kind == PollKind::Snmp {
        for (i, oid) in raw.oids.iter().enumerate() {
            let arcs: Vec<&str> = oid.split('.').collect();
            if arcs.len() < 2 || arcs.len() > 128 || arcs.iter().any(|a| a.parse::<u32>().is_err())
            {
                e.push(
                    format!("{key}.oids[{i}]"),
                    format!("{oid:?} is not a dotted OID"),
                );
            }
        }
        if raw.oids.is_empty() && raw.profile.is_none() {
            e.push(
                format!("{key}.oids"),
                "an snmp job needs oids, or profile = \"if\"",
            );
        }
        if raw.community.is_some() && raw.username.is_some() {
            e.push(
                format!("{key}.community"),
                "give a community (v2c) or a username (v3), not both",
            );
        }
    } else if raw.community.is_some() || !raw.oids.is_empty() {
        e.push(
            format!("{key}.oids"),
            "only snmp jobs have a community and oids",
        );
    }
    (e.0.len() == errors_before).then(|| PollJob {
        name: raw.name.clone(),
        origin: Origin::Config,
        kind: raw.kind,
        host,
        port,
        path,
        https,
        ca_file: raw.ca_file.clone(),
        interval,
        timeout,
        prefix,
        select,
        labels,
        profile: raw.profile.clone(),
        credentials,
        paused: raw.paused,
        packets,
        community: raw.community.clone().unwrap_or_else(|| "public".into()),
        oids: raw.oids.clone(),
    })
}

/// `host`, `host:port`, `[v6]:port`; for Prometheus also a URL,
/// `http://host:port/path` or `https://…`. Returns host, port and path. A
/// bare host is reached on the kind's port (9100 for an exporter); a URL
/// without one on its scheme's (80, 443).
pub(crate) fn target(kind: PollKind, text: &str) -> Result<(String, u16, String), String> {
    let mut default_port = kind.default_port();
    let (rest, path) = match kind {
        PollKind::Prometheus => {
            let rest = if let Some(rest) = text.strip_prefix("https://") {
                default_port = 443;
                rest
            } else if let Some(rest) = text.strip_prefix("http://") {
                default_port = 80;
                rest
            } else if text.contains("://") {
                return Err("a URL is http:// or https://".into());
            } else {
                text
            };
            match rest.find('/') {
                Some(i) => (&rest[..i], rest[i..].to_owned()),
                None => (rest, "/metrics".to_owned()),
            }
        }
        _ => (text, String::new()),
    };
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or("an IPv6 address needs its ']'")?;
        match after.strip_prefix(':') {
            Some(p) => (host, Some(p)),
            None if after.is_empty() => (host, None),
            None => return Err("expected ':port' after ']'".into()),
        }
    } else if kind == PollKind::Ping && rest.matches(':').count() > 1 {
        (rest, None) // a bare IPv6 address
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    if kind == PollKind::Ping && port.is_some() {
        return Err("a ping target is a host, without a port".into());
    }
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("{p:?} is not a port"))?,
        None => default_port,
    };
    let valid_host = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'));
    if !valid_host {
        return Err(format!("{host:?} is not a host name or address"));
    }
    if !path.is_empty() && (path.bytes().any(|b| b.is_ascii_control() || b == b' ')) {
        return Err("the URL's path must not hold spaces or control characters".into());
    }
    Ok((host.to_owned(), port, path))
}

fn valid_prefix(prefix: &str) -> bool {
    !prefix.is_empty()
        && prefix.len() <= 128
        && prefix
            .split('/')
            .all(|level| !level.is_empty() && !level.contains(['+', '#']))
}

fn patterns(sources: &[String], key: &str, e: &mut Errors) -> Patterns {
    let mut out = Vec::new();
    for (i, source) in sources.iter().enumerate() {
        // Anchored: `cpu` means the plugin cpu, not every name holding it.
        match regex::RegexBuilder::new(&format!("^(?:{source})$"))
            .size_limit(1 << 20)
            .build()
        {
            Ok(re) => out.push(re),
            Err(err) => e.push(
                format!("{key}[{i}]"),
                format!("not a regular expression: {err}"),
            ),
        }
    }
    Patterns(out)
}

fn credentials(raw: &RawPoll, key: &str, e: &mut Errors) -> Option<(String, String)> {
    let password = match (&raw.password, &raw.password_file) {
        (Some(_), Some(_)) => {
            e.push(
                format!("{key}.password"),
                "give a password or a password_file, not both",
            );
            None
        }
        (Some(p), None) => Some(p.clone()),
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(p) => Some(p.trim_end_matches(['\r', '\n']).to_owned()),
            Err(err) => {
                e.push(
                    format!("{key}.password_file"),
                    format!("cannot read {}: {err}", path.display()),
                );
                None
            }
        },
        (None, None) => None,
    };
    match (&raw.username, password) {
        (Some(u), p) => Some((u.clone(), p.unwrap_or_default())),
        (None, Some(_)) => {
            e.push(format!("{key}.username"), "a password needs a username");
            None
        }
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(kind: PollKind, target: &str) -> RawPoll {
        RawPoll {
            name: "job".into(),
            kind,
            target: target.into(),
            interval: None,
            timeout: None,
            prefix: None,
            include: Vec::new(),
            exclude: Vec::new(),
            labels: Default::default(),
            profile: None,
            username: None,
            password: None,
            password_file: None,
            ca_file: None,
            paused: false,
            packets: None,
            community: None,
            oids: Vec::new(),
        }
    }

    fn check(raw: &RawPoll) -> Result<PollJob, Vec<String>> {
        let mut errors = Vec::new();
        let job = poll(raw, "poll[0]", &mut Errors(&mut errors));
        job.ok_or_else(|| errors.into_iter().map(|e| e.key).collect())
    }

    #[test]
    fn targets_take_default_ports_and_paths() {
        let t = |k, s| target(k, s).unwrap();
        assert_eq!(t(PollKind::Munin, "pi"), ("pi".into(), 4949, "".into()));
        assert_eq!(t(PollKind::Munin, "10.0.0.2:5000").1, 5000);
        assert_eq!(t(PollKind::Munin, "[::1]:4949").0, "::1");
        assert_eq!(
            t(PollKind::Prometheus, "http://127.0.0.1:9100/metrics"),
            ("127.0.0.1".into(), 9100, "/metrics".into())
        );
        assert_eq!(t(PollKind::Prometheus, "pi").2, "/metrics");
        assert_eq!(
            t(PollKind::Prometheus, "https://pi.lan/node"),
            ("pi.lan".into(), 443, "/node".into())
        );
        assert_eq!(t(PollKind::Prometheus, "http://pi.lan").1, 80);
        assert!(target(PollKind::Prometheus, "ftp://pi/metrics").is_err());
        assert!(target(PollKind::Munin, "pi:0").is_err());
        assert!(target(PollKind::Munin, "pi:x").is_err());
        assert!(target(PollKind::Munin, "a b").is_err());
        assert!(target(PollKind::Munin, "").is_err());
        assert_eq!(t(PollKind::Ping, "::1").0, "::1");
        assert_eq!(t(PollKind::Ping, "router.lan").0, "router.lan");
        assert!(target(PollKind::Ping, "router:80").is_err());
    }

    #[test]
    fn a_job_gets_defaults_from_its_kind_and_target() {
        let job = check(&raw(PollKind::Munin, "127.0.0.1")).unwrap();
        assert_eq!(job.interval, Duration::from_secs(300));
        assert_eq!(job.timeout, Duration::from_secs(30));
        assert_eq!(job.prefix, "munin/127.0.0.1");
        assert!(job.jitter() < job.interval);
        assert_eq!(job.template_name(), "poll:job");
    }

    #[test]
    fn bad_values_are_named_by_key() {
        let mut r = raw(PollKind::Munin, "pi");
        r.name = "bad name".into();
        r.interval = Some(Duration::from_secs(7));
        r.include = vec!["(".into()];
        r.prefix = Some("a/#".into());
        r.labels.insert("device".into(), "eth0".into());
        let keys = check(&r).unwrap_err();
        for k in [
            "poll[0].name",
            "poll[0].interval",
            "poll[0].include[0]",
            "poll[0].prefix",
            "poll[0].labels",
        ] {
            assert!(keys.iter().any(|x| x == k), "{k} not in {keys:?}");
        }
        let mut r = raw(PollKind::Munin, "pi");
        r.interval = Some(Duration::from_secs(60));
        r.timeout = Some(Duration::from_secs(60));
        assert_eq!(check(&r).unwrap_err(), ["poll[0].timeout"]);
        r.timeout = None;
        r.profile = Some("node".into());
        assert_eq!(check(&r).unwrap_err(), ["poll[0].profile"]);
    }

    #[test]
    fn selections_are_anchored() {
        let mut r = raw(PollKind::Munin, "pi");
        r.include = vec!["cpu|load".into()];
        r.exclude = vec!["load".into()];
        let job = check(&r).unwrap();
        assert!(job.select.keeps("cpu"));
        assert!(!job.select.keeps("cpuspeed"));
        assert!(!job.select.keeps("load"));
    }

    #[test]
    fn names_are_unique() {
        let mut errors = Vec::new();
        let one = raw(PollKind::Munin, "pi");
        let jobs = polls(&[Some(one.clone()), Some(one)], &mut Errors(&mut errors));
        assert_eq!(jobs.len(), 2);
        assert_eq!(errors[0].key, "poll[1].name");
    }
}
