//! The token on the hand-off's confirmation page (see `confirm.rs`): it binds the answer
//! to the browser session the page was shown to and to the exact hand-off request, for a
//! limited time. Stateless: nothing is stored until the person continues.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_core::SessionId;
use ring::hmac;

/// How long a confirmation page can be answered.
const PAGE_TTL_SECS: i64 = 600;

/// The confirmation key is derived from the mobile session key under this label. The
/// session key otherwise only MACs 16-byte session ids, so the two uses never meet.
const KEY_LABEL: &[u8] = b"portcullis/mobile-handoff-confirm/v1";

/// Signs and checks the confirmation page's token: `issued_at.base64url(HMAC(session id,
/// issued_at, hand-off query))`. Stateless: nothing is stored until the person continues.
pub(super) struct PageToken(hmac::Key);

impl PageToken {
    pub(super) fn new(mobile_session_key: &[u8; 32]) -> Self {
        let key = crate::infra::crypto::mac(mobile_session_key, KEY_LABEL);
        Self(hmac::Key::new(hmac::HMAC_SHA256, &key))
    }

    fn input(session: SessionId, issued_at: i64, continue_query: &str) -> Vec<u8> {
        let mut data = Vec::with_capacity(64 + continue_query.len());
        data.extend_from_slice(session.0.as_bytes());
        data.extend_from_slice(&issued_at.to_be_bytes());
        data.extend_from_slice(continue_query.as_bytes());
        data
    }

    pub(super) fn mint(&self, session: SessionId, continue_query: &str, now: i64) -> String {
        let tag = hmac::sign(&self.0, &Self::input(session, now, continue_query));
        format!("{now}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// Whether `token` was minted for this session and hand-off, at most
    /// [`PAGE_TTL_SECS`] ago.
    pub(super) fn verify(
        &self,
        session: SessionId,
        continue_query: &str,
        token: &str,
        now: i64,
    ) -> bool {
        let Some((issued, tag)) = token.split_once('.') else {
            return false;
        };
        let (Ok(issued_at), Ok(tag)) = (issued.parse::<i64>(), URL_SAFE_NO_PAD.decode(tag)) else {
            return false;
        };
        // A minute of clock slack between nodes; never older than the page may be.
        (now - PAGE_TTL_SECS..=now + 60).contains(&issued_at)
            && hmac::verify(
                &self.0,
                &Self::input(session, issued_at, continue_query),
                &tag,
            )
            .is_ok()
    }
}

pub(super) fn now_secs() -> i64 {
    portcullis_core::now().unix_timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_bind_session_request_and_time() {
        let tokens = PageToken::new(&[9; 32]);
        let sid = SessionId::new();
        let query = "state=s&redirect_uri=alga%3A%2F%2Fcb&code_challenge=c";
        let now = 1_700_000_000;
        let t = tokens.mint(sid, query, now);
        assert!(tokens.verify(sid, query, &t, now));
        assert!(tokens.verify(sid, query, &t, now + PAGE_TTL_SECS));
        assert!(
            !tokens.verify(sid, query, &t, now + PAGE_TTL_SECS + 1),
            "expired"
        );
        assert!(
            !tokens.verify(SessionId::new(), query, &t, now),
            "another session"
        );
        assert!(
            !tokens.verify(sid, "state=other", &t, now),
            "another hand-off"
        );
        assert!(
            !PageToken::new(&[8; 32]).verify(sid, query, &t, now),
            "another key"
        );
        // The time is signed: moving it forward does not extend the page's life.
        let (_, tag) = t.split_once('.').unwrap();
        assert!(!tokens.verify(sid, query, &format!("{}.{tag}", now + 500), now + 700));
        for bogus in ["", ".", "x.y", "1700000000.", "1700000000"] {
            assert!(!tokens.verify(sid, query, bogus, now), "{bogus:?}");
        }
    }
}
