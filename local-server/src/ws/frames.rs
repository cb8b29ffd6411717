//! The server's side of a WebSocket connection: frames out written here,
//! frames in parsed by tungstenite.
//!
//! tungstenite copies every frame it sends into a per-socket buffer that
//! keeps the capacity of the largest frame for the socket's life (a 4 KiB
//! snapshot part made each idle socket ~4 KiB bigger) and writes each frame
//! with its own call. Frames a server sends are simple (RFC 6455 §5.2: a
//! 2–10 byte header, no mask), so rollcall writes them itself: the header
//! on the stack and the payload straight from the bytes the presence view
//! serialised once and shares with every socket, all of a snapshot's parts
//! in one vectored write, and nothing kept between writes.
//!
//! Parsing what the client sends (masking, fragments, UTF-8, limits) stays
//! with tungstenite, which reads through [`ReadOnly`]: anything it would
//! write (its automatic pong and close replies) is dropped, and the socket
//! loop sends those replies with [`write_control`] instead, so only one
//! writer ever touches the connection.

use std::io::{self, IoSlice};
use std::ops::Deref;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

/// Opcode of a text frame.
pub const TEXT: u8 = 0x1;
/// Opcode of a close frame.
pub const CLOSE: u8 = 0x8;
/// Opcode of a ping frame.
pub const PING: u8 = 0x9;
/// Opcode of a pong frame.
pub const PONG: u8 = 0xA;

/// Largest payload of a control frame (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// Frames written per vectored write (two slices each: header, payload).
const FRAMES_PER_WRITE: usize = 32;

/// The header of a final, unmasked frame with `opcode` and `len` bytes of
/// payload, and its length (2, 4 or 10 bytes).
fn header(opcode: u8, len: usize) -> ([u8; 10], usize) {
    let mut h = [0u8; 10];
    h[0] = 0x80 | opcode; // FIN, no extension bits
    let n = if len < 126 {
        h[1] = len as u8;
        2
    } else if let Ok(short) = u16::try_from(len) {
        h[1] = 126;
        h[2..4].copy_from_slice(&short.to_be_bytes());
        4
    } else {
        h[1] = 127;
        h[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    };
    (h, n)
}

/// Writes each of `payloads` as a text frame, in order, in as few writes as
/// the connection takes (one per [`FRAMES_PER_WRITE`] frames when it takes
/// them whole).
///
/// The future of this call is part of every socket's task (it is how
/// events go out), so its headers and slices for many frames are on the
/// heap, for the call only: a single frame, the common case, needs none.
pub async fn write_texts<S, T>(io: &mut S, payloads: &[T]) -> io::Result<()>
where
    S: AsyncWrite + Unpin,
    T: Deref<Target = str>,
{
    if let [one] = payloads {
        write_frame(io, TEXT, one.as_bytes()).await?;
    } else {
        for chunk in payloads.chunks(FRAMES_PER_WRITE) {
            let headers: Vec<_> = chunk.iter().map(|p| header(TEXT, p.len())).collect();
            let mut slices: Vec<IoSlice<'_>> = headers
                .iter()
                .zip(chunk)
                .flat_map(|((h, n), p)| [IoSlice::new(&h[..*n]), IoSlice::new(p.as_bytes())])
                .collect();
            write_all_vectored(io, &mut slices).await?;
        }
    }
    io.flush().await
}

/// Writes one control frame (`CLOSE`, `PING`, `PONG`); `payload` is cut to
/// [`MAX_CONTROL_PAYLOAD`] bytes.
pub async fn write_control<S>(io: &mut S, opcode: u8, payload: &[u8]) -> io::Result<()>
where
    S: AsyncWrite + Unpin,
{
    write_frame(
        io,
        opcode,
        &payload[..payload.len().min(MAX_CONTROL_PAYLOAD)],
    )
    .await?;
    io.flush().await
}

/// Writes one frame: its header and `payload`, in one vectored write when
/// the connection takes it whole.
async fn write_frame<S>(io: &mut S, opcode: u8, payload: &[u8]) -> io::Result<()>
where
    S: AsyncWrite + Unpin,
{
    let (h, n) = header(opcode, payload.len());
    write_all_vectored(io, &mut [IoSlice::new(&h[..n]), IoSlice::new(payload)]).await
}

/// The payload of a close frame: the code, then the reason cut to fit.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut out = code.to_be_bytes().to_vec();
    let mut end = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&reason.as_bytes()[..end]);
    out
}

/// Writes all of `slices`, however the connection splits them.
async fn write_all_vectored<S>(io: &mut S, mut slices: &mut [IoSlice<'_>]) -> io::Result<()>
where
    S: AsyncWrite + Unpin,
{
    IoSlice::advance_slices(&mut slices, 0); // skip leading empty slices
    while !slices.is_empty() {
        let n = io.write_vectored(slices).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut slices, n);
    }
    Ok(())
}

/// The connection as tungstenite sees it: reads pass through, writes are
/// accepted and dropped (see the module docs).
pub struct ReadOnly<S>(pub S);

impl<S: AsyncRead + Unpin> AsyncRead for ReadOnly<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: Unpin> AsyncWrite for ReadOnly<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::WebSocketStream;
    use tungstenite::protocol::Role;
    use tungstenite::{Message, protocol::CloseFrame};

    #[test]
    fn headers_use_the_shortest_length_form() {
        assert_eq!(header(TEXT, 0), ([0x81, 0, 0, 0, 0, 0, 0, 0, 0, 0], 2));
        assert_eq!(header(TEXT, 125).0[..2], [0x81, 125]);
        assert_eq!(header(PING, 3).0[..2], [0x89, 3]);
        let (h, n) = header(TEXT, 126);
        assert_eq!((&h[..n], n), (&[0x81, 126, 0, 126][..], 4));
        let (h, n) = header(TEXT, 65_535);
        assert_eq!(&h[..n], &[0x81, 126, 0xff, 0xff]);
        let (h, n) = header(TEXT, 65_536);
        assert_eq!(&h[..n], &[0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
    }

    #[test]
    fn a_close_reason_is_cut_on_a_character_boundary() {
        let p = close_payload(4001, &"é".repeat(100));
        assert!(p.len() <= MAX_CONTROL_PAYLOAD);
        assert_eq!(&p[..2], &4001u16.to_be_bytes());
        assert!(std::str::from_utf8(&p[2..]).is_ok());
        assert_eq!(close_payload(1001, "bye"), [0x03, 0xe9, b'b', b'y', b'e']);
    }

    /// A client (tungstenite, as a browser would) reads what we write, of
    /// every header size, across many vectored writes through a small pipe
    /// (partial writes), and its pings and close come back answered.
    #[tokio::test]
    async fn a_client_reads_every_frame_and_gets_its_replies() {
        let (mut server, client) = tokio::io::duplex(1000);
        let mut client = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
        let texts: Vec<String> = [0usize, 1, 125, 126, 4000, 65_535, 65_536, 200_000]
            .iter()
            .cycle()
            .take(70) // more than FRAMES_PER_WRITE: several writes
            .enumerate()
            .map(|(i, &n)| format!("{i}:{}", "é".repeat(n / 2)))
            .collect();
        let expected = texts.clone();
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            for _ in 0..expected.len() {
                match client.next().await {
                    Some(Ok(Message::Text(t))) => got.push(t.to_string()),
                    other => panic!("expected a text frame, got {other:?}"),
                }
            }
            assert_eq!(got, expected);
            assert!(matches!(client.next().await, Some(Ok(Message::Pong(p))) if &p[..] == b"hi"));
            client.send(Message::Ping("yo".into())).await.unwrap();
            client
        });
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        write_texts(&mut server, &refs).await.unwrap();
        write_control(&mut server, PONG, b"hi").await.unwrap();
        let mut client = reader.await.unwrap();
        // The client's ping and close arrive masked: our side reads them
        // through tungstenite, whose own replies must go nowhere.
        let (r, mut w) = tokio::io::split(server);
        let mut ours = WebSocketStream::from_raw_socket(ReadOnly(r), Role::Server, None).await;
        let Some(Ok(Message::Ping(p))) = ours.next().await else {
            panic!("the client's ping")
        };
        write_control(&mut w, PONG, &p).await.unwrap();
        let closing = tokio::spawn(async move {
            let _ = client.close(None).await;
            let mut after = Vec::new();
            while let Some(Ok(m)) = client.next().await {
                after.push(m);
            }
            after
        });
        assert!(matches!(ours.next().await, Some(Ok(Message::Close(_)))));
        write_control(&mut w, CLOSE, &close_payload(4001, "logged out"))
            .await
            .unwrap();
        drop((ours, w));
        let after = closing.await.unwrap();
        match &after[..] {
            [
                Message::Pong(p),
                Message::Close(Some(CloseFrame { code, reason })),
            ] => {
                assert_eq!(&p[..], b"yo");
                assert_eq!(u16::from(*code), 4001);
                assert_eq!(reason.as_str(), "logged out");
            }
            other => panic!("expected our pong and close only, got {other:?}"),
        }
    }
}
