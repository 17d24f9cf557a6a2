//! Listening to a live call: its listen URL read from Vapi (`GET /call/{id}`, never stored),
//! its audio frames written as WAV. Used by `switchboard listen` and the console's listen key.

use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::store::Store;
use crate::vapi::VapiClient;
use crate::vapi::live::{Frame, wav_header};

/// The stream's PCM layout (Vapi sends 16-bit stereo at 16 kHz).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    pub sample_rate: u32,
    pub channels: u16,
}

impl Default for Format {
    fn default() -> Format {
        Format {
            sample_rate: 16_000,
            channels: 2,
        }
    }
}

impl Format {
    /// Seconds of audio in `bytes` of PCM.
    pub fn seconds(&self, bytes: u64) -> f64 {
        bytes as f64 / (f64::from(self.sample_rate) * f64::from(self.channels) * 2.0)
    }
}

/// How a listen ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Heard {
    /// Bytes of PCM written after the header.
    pub bytes: u64,
    /// The call (or its socket) ended, rather than the listener stopping.
    pub call_ended: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("{0}")]
    NotLive(String),
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    #[error("{0}")]
    Vapi(#[from] crate::vapi::VapiError),
    #[error("cannot write the audio: {0}")]
    Write(#[from] std::io::Error),
}

/// Streams call `call_id`'s audio into `sink` as WAV (a streaming header first) until the
/// call ends or `stop` completes.
pub async fn listen(
    store: &Store,
    vapi: &VapiClient,
    call_id: i64,
    format: Format,
    sink: &mut (impl AsyncWrite + Unpin),
    stop: impl std::future::Future<Output = ()>,
) -> Result<Heard, ListenError> {
    let call = store.call(call_id).await?;
    let Some(provider_id) = call
        .provider_call_id
        .as_deref()
        .filter(|_| call.status.is_at_vapi())
    else {
        return Err(ListenError::NotLive(format!(
            "call {call_id} is {}: there is nothing to listen to",
            call.status
        )));
    };
    let remote = vapi.get_call(provider_id).await?;
    let Some(url) = remote.monitor.and_then(|m| m.listen_url) else {
        return Err(ListenError::NotLive(format!(
            "call {call_id}: Vapi gives it no listen URL (ended, or the assistant's monitorPlan.listenEnabled is off)"
        )));
    };
    let mut socket = vapi.listen(&url).await?;
    sink.write_all(&wav_header(format.sample_rate, format.channels, None))
        .await?;
    let mut bytes = 0u64;
    tokio::pin!(stop);
    let call_ended = loop {
        tokio::select! {
            frame = socket.next() => match frame {
                Some(Ok(Frame::Audio(pcm))) => {
                    sink.write_all(&pcm).await?;
                    bytes += pcm.len() as u64;
                }
                Some(Ok(Frame::Text(_))) => {}
                Some(Err(e)) => return Err(e.into()),
                None => break true,
            },
            _ = &mut stop => break false,
        }
    };
    sink.flush().await?;
    Ok(Heard { bytes, call_ended })
}

/// Completes a WAV file's sizes once its length is known.
pub async fn finish_file(
    file: &mut tokio::fs::File,
    format: Format,
    bytes: u64,
) -> std::io::Result<()> {
    use tokio::io::AsyncSeekExt;
    let len = u32::try_from(bytes).unwrap_or(u32::MAX - 36);
    file.seek(std::io::SeekFrom::Start(0)).await?;
    file.write_all(&wav_header(format.sample_rate, format.channels, Some(len)))
        .await?;
    file.flush().await
}
