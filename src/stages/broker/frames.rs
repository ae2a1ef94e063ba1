//! MQTT packets as the gate sees them: whole frames cut from a byte
//! stream by rumqttc's codec (never more than the size limit), and the
//! CONNACK it answers with when it turns a device away.

use bytes::{Bytes, BytesMut};
use rumqttc::{ConnAck, ConnectReturnCode, FixedHeader, Packet};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

#[derive(Debug)]
pub(super) enum FrameError {
    TooBig,
    Malformed,
    Io(std::io::Error),
}

fn frame_error(e: rumqttc::Error) -> FrameError {
    match e {
        rumqttc::Error::PayloadSizeLimitExceeded(_) => FrameError::TooBig,
        _ => FrameError::Malformed,
    }
}

/// The next whole packet at the head of `buffer`, taken off it; `None`
/// if it is not all there yet (room is reserved for the rest).
pub(super) fn take_frame(
    buffer: &mut BytesMut,
    max: usize,
) -> Result<Option<(FixedHeader, Bytes)>, FrameError> {
    match rumqttc::check(buffer.iter(), max) {
        Ok(header) => Ok(Some((
            header,
            buffer.split_to(header.frame_length()).freeze(),
        ))),
        Err(rumqttc::Error::InsufficientBytes(missing)) => {
            buffer.reserve(missing);
            Ok(None)
        }
        Err(e) => Err(frame_error(e)),
    }
}

/// Reads until a whole packet is there; `None` if the peer closed first.
pub(super) async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    buffer: &mut BytesMut,
    max: usize,
) -> Result<Option<(FixedHeader, Bytes)>, FrameError> {
    loop {
        if let Some(frame) = take_frame(buffer, max)? {
            return Ok(Some(frame));
        }
        if reader.read_buf(buffer).await.map_err(FrameError::Io)? == 0 {
            return Ok(None);
        }
    }
}

/// Answers a CONNECT with `code` and closes.
pub(super) async fn connack<W: AsyncWrite + Unpin>(writer: &mut W, code: ConnectReturnCode) {
    let mut bytes = BytesMut::new();
    if Packet::ConnAck(ConnAck::new(code, false))
        .write(&mut bytes, usize::MAX)
        .is_ok()
    {
        let _ = writer.write_all(&bytes).await;
    }
    let _ = writer.shutdown().await;
}

#[cfg(test)]
mod tests {
    use rumqttc::{PacketType, Publish, QoS};

    use super::*;

    fn publish(topic: &str, payload: &[u8]) -> BytesMut {
        let mut bytes = BytesMut::new();
        let mut publish = Publish::new(topic, QoS::AtLeastOnce, payload.to_vec());
        publish.pkid = 1;
        Packet::Publish(publish)
            .write(&mut bytes, usize::MAX)
            .unwrap();
        bytes
    }

    #[test]
    fn packets_are_taken_whole_and_only_whole() {
        let mut stream = publish("a/b", b"21.5");
        stream.extend_from_slice(&publish("c", b"1")[..3]);
        let (header, frame) = take_frame(&mut stream, 1024).unwrap().unwrap();
        assert_eq!(header.packet_type().unwrap(), PacketType::Publish);
        assert_eq!(Publish::read(header, frame).unwrap().topic, "a/b");
        // The second is cut short: left in the buffer for the next read.
        assert!(take_frame(&mut stream, 1024).unwrap().is_none());
        assert_eq!(stream.len(), 3);
    }

    #[test]
    fn a_packet_over_the_limit_or_garbage_is_an_error() {
        let mut big = publish("a", &[0; 2000]);
        assert!(matches!(
            take_frame(&mut big, 1024),
            Err(FrameError::TooBig)
        ));
        // A remaining length that never ends (five continuation bytes).
        let mut garbage = BytesMut::from(&[0x30, 0xff, 0xff, 0xff, 0xff, 0xff][..]);
        assert!(matches!(
            take_frame(&mut garbage, 1 << 20),
            Err(FrameError::Malformed)
        ));
    }
}
