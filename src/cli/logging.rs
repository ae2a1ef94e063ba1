//! Where logs go and how they look: stderr, with colours only on a
//! terminal. Under systemd (`JOURNAL_STREAM` set) each line starts with its
//! syslog priority (`<3>` for ERROR…), which journald turns into the
//! entry's priority (so `journalctl -p warning -u datalog-rrd` works), and
//! carries no timestamp, since journald stamps every line itself.

use std::fmt;
use std::io::IsTerminal;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::fmt::format::{Format, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the global subscriber; `RUST_LOG` wins over `default_filter`.
/// What actix's HTTP/1 layer says of a client's broken connection is
/// counted (`metrics::HTTP_CLIENT_ERRORS`), not written: see
/// [`ClientErrorsLayer`].
pub fn init(default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let lines = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(colour);
    let lines = if std::env::var_os("JOURNAL_STREAM").is_some() {
        lines
            .event_format(JournalLine(Format::default().without_time()))
            .boxed()
    } else {
        lines.boxed()
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(ClientErrorsLayer)
        .with(lines.with_filter(filter_fn(|meta| !is_client_error(meta))))
        .init();
}

/// actix-http's HTTP/1 dispatcher: every event it logs is about one
/// connection going wrong, almost always the client's doing (a malformed
/// request line, a body cut short). At ERROR, one line per connection:
/// anyone who reaches the port could fill the journal and wear an SD card.
fn is_client_error(meta: &tracing::Metadata<'_>) -> bool {
    meta.target().starts_with("actix_http::h1") && *meta.level() <= Level::WARN
}

/// Counts the events [`is_client_error`] picks, keeping what the last said;
/// the web stage reports the count once a minute.
struct ClientErrorsLayer;

impl<S: Subscriber> Layer<S> for ClientErrorsLayer {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        if !is_client_error(event.metadata()) {
            return;
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        crate::metrics::HTTP_CLIENT_ERRORS.add(message.0);
    }
}

/// An event's `message` field, as text.
struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

/// The sd-daemon(3) priority prefix journald reads from a stream line.
fn priority(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "<3>",
        Level::WARN => "<4>",
        Level::INFO => "<6>",
        Level::DEBUG | Level::TRACE => "<7>",
    }
}

/// The usual line, behind its priority prefix.
struct JournalLine<F>(F);

impl<S, N, F> FormatEvent<S, N> for JournalLine<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        writer.write_str(priority(event.metadata().level()))?;
        self.0.format_event(ctx, writer, event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_map_to_syslog_priorities() {
        assert_eq!(priority(&Level::ERROR), "<3>");
        assert_eq!(priority(&Level::WARN), "<4>");
        assert_eq!(priority(&Level::INFO), "<6>");
        assert_eq!(priority(&Level::DEBUG), "<7>");
    }
}
