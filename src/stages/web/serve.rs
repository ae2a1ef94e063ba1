//! The accept loop: actix-http's service over a listener of our own, so
//! that the web thread sleeps while nobody browses.
//!
//! Why not actix-web's `HttpServer`: its worker keeps actix-http's date
//! clock (`DateService`, an interval of 500 ms, actix/actix-web#3411), and
//! so wakes 4 times a second for as long as the daemon runs: most of an
//! idle daemon's wake-ups on a Raspberry Pi. Here the service, and with it
//! that clock, is built for the first connection and dropped `LINGER` after
//! the last one closed. The rest is what `HttpServer` did for us: a bound
//! on open connections (more wait in the kernel's backlog), a pause after
//! an accept error (out of descriptors), and a graceful stop (idle
//! keep-alive connections closed at once, requests in progress given
//! `SHUTDOWN_TIMEOUT`).

use std::cell::Cell;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use actix_web::dev::{Service, ServiceFactory};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot, watch};
use tracing::warn;

/// How long the service outlives the last connection: a page's next
/// click, or the next refresh of an open chart, finds it still there.
const LINGER: Duration = Duration::from_secs(30);
/// Open connections at most (as actix-web's `max_connections` was).
pub(super) const MAX_CONNECTIONS: usize = 256;
/// How long requests in progress may take to finish at stop.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// The wait after an accept error, so that a lack of descriptors does not
/// spin the thread.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(500);

/// Tells the connections that the server stops: each closes when its
/// request in progress, if any, is answered. Handed to actix-http's
/// builder (`graceful_shutdown_signal`).
#[derive(Clone)]
pub(super) struct Stopping(watch::Receiver<bool>);

impl Stopping {
    pub async fn wait(mut self) {
        let _ = self.0.wait_for(|&stopping| stopping).await;
    }
}

/// Serves `listener` until `stop` fires (or its sender is dropped).
/// `new_service` builds actix-http's service factory; it is called again
/// when the server wakes after lingering.
pub(super) async fn run<F, SF>(
    listener: std::net::TcpListener,
    new_service: F,
    stop: oneshot::Receiver<()>,
) -> io::Result<()>
where
    F: Fn(Stopping) -> SF,
    SF: ServiceFactory<TcpStream, Config = (), Response = (), InitError = ()>,
    SF::Service: 'static,
{
    listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(listener)?;
    let (stopping_tx, stopping_rx) = watch::channel(false);
    let open = Rc::new(Cell::new(0usize));
    let closed = Rc::new(Notify::new());
    let mut service: Option<Rc<SF::Service>> = None;
    tokio::pin!(stop);
    loop {
        let lingering = service.is_some() && open.get() == 0;
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept(), if open.get() < MAX_CONNECTIONS => {
                let stream = match accepted {
                    Ok((stream, _peer)) => stream,
                    Err(e) => {
                        warn!(error = %e, "Cannot accept an HTTP connection.");
                        tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                        continue;
                    }
                };
                let svc = match &service {
                    Some(svc) => svc.clone(),
                    None => {
                        let built = new_service(Stopping(stopping_rx.clone()))
                            .new_service(())
                            .await
                            .map_err(|()| io::Error::other("cannot build the web service"))?;
                        service.insert(Rc::new(built)).clone()
                    }
                };
                open.set(open.get() + 1);
                let (open, closed) = (open.clone(), closed.clone());
                actix_web::rt::spawn(async move {
                    // The dispatcher answers bad requests itself; what is
                    // left is a connection gone, counted by actix's log.
                    let _ = svc.call(stream).await;
                    open.set(open.get() - 1);
                    closed.notify_one();
                });
            }
            () = closed.notified() => {}
            () = tokio::time::sleep(LINGER), if lingering => service = None,
        }
    }
    drop(listener);
    stopping_tx.send_replace(true);
    let drained = async {
        while open.get() > 0 {
            closed.notified().await;
        }
    };
    let _ = tokio::time::timeout(SHUTDOWN_TIMEOUT, drained).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::dev::{fn_factory, fn_service};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Counts services built and dropped.
    #[derive(Default)]
    struct Counts {
        built: Cell<usize>,
        dropped: Cell<usize>,
    }

    struct Counted(Rc<Counts>);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.dropped.set(self.0.dropped.get() + 1);
        }
    }

    /// A service that says "ok" and closes.
    fn factory(
        counts: Rc<Counts>,
    ) -> impl ServiceFactory<TcpStream, Config = (), Response = (), Error = io::Error, InitError = ()>
    {
        fn_factory(move || {
            let counts = counts.clone();
            async move {
                counts.built.set(counts.built.get() + 1);
                let counted = Rc::new(Counted(counts));
                Ok(fn_service(move |mut stream: TcpStream| {
                    let _alive = &counted;
                    async move { stream.write_all(b"ok").await }
                }))
            }
        })
    }

    async fn ask(addr: std::net::SocketAddr) -> String {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        answer
    }

    /// The service (and actix's date clock with it) exists while someone
    /// connects: built at the first connection, dropped `LINGER` after the
    /// last, built again at the next.
    #[tokio::test(start_paused = true)]
    async fn the_service_sleeps_after_the_last_connection_and_wakes_for_the_next() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                let addr = listener.local_addr().unwrap();
                let counts = Rc::new(Counts::default());
                let (stop, stop_rx) = oneshot::channel();
                let make = {
                    let counts = counts.clone();
                    move |_: Stopping| factory(counts.clone())
                };
                let server = tokio::task::spawn_local(run(listener, make, stop_rx));
                assert_eq!(
                    counts.built.get(),
                    0,
                    "nothing is built before a client comes"
                );
                assert_eq!(ask(addr).await, "ok");
                assert_eq!((counts.built.get(), counts.dropped.get()), (1, 0));

                tokio::time::sleep(LINGER + Duration::from_secs(1)).await;
                assert_eq!(counts.dropped.get(), 1, "dropped once idle for LINGER");

                assert_eq!(ask(addr).await, "ok");
                assert_eq!(counts.built.get(), 2, "built again for the next client");

                stop.send(()).unwrap();
                server.await.unwrap().unwrap();
                assert_eq!(counts.dropped.get(), 2, "dropped at stop");
                // The port is closed.
                assert!(TcpStream::connect(addr).await.is_err());
            })
            .await;
    }
}
