//! What a [`Message`] looks like on each channel, as pure functions the
//! adapters share: Slack's incoming-webhook JSON ([`slack_payload`]),
//! Microsoft Teams' Adaptive Card message ([`teams_payload`]), an RFC 5322
//! email ([`email_mime`], what `purser up` writes to its outbox; SES v2
//! builds its own from [`plain_text`]) and SNS's subject ([`sns_subject`]).
//!
//! The email is written by hand rather than with a mail crate: it is one
//! plain-text part with six headers, and lettre's builder (the well-kept
//! choice) brings half a dozen crates into `purser-core`, which has no I/O
//! and builds in seconds. Every header value is cleaned of CR, LF and other
//! control characters, so no message text can add a header.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::ports::{Message, NotifyError, WebhookUrl};

/// Slack's limits: a header block's text, a section's, a button's URL.
const SLACK_HEADER_MAX: usize = 150;
const SLACK_SECTION_MAX: usize = 3000;
const SLACK_URL_MAX: usize = 3000;
/// SNS refuses a Subject of 100 characters or more.
const SNS_SUBJECT_MAX: usize = 99;
/// RFC 5322's limit of a line (without its CRLF).
const MIME_LINE_MAX: usize = 998;

/// The message as plain text: its text, then its link on a line of its own.
pub fn plain_text(message: &Message) -> String {
    match message.link.as_deref().filter(|l| !l.is_empty()) {
        Some(link) => format!("{}\n\n{link}", message.text.trim_end()),
        None => message.text.trim_end().to_owned(),
    }
}

/// The subject on one line (control characters and runs of whitespace as
/// one space), as SES's Simple content wants it.
pub fn subject_line(message: &Message) -> String {
    one_line(&message.subject)
}

/// Slack's incoming-webhook JSON: `text` (what notifications and old
/// clients show) and `blocks`: a header with the subject, a section with the
/// text, the link as a button, and the event in small print.
pub fn slack_payload(message: &Message) -> Value {
    let mut blocks = vec![
        json!({
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": truncate(&one_line(&message.subject), SLACK_HEADER_MAX),
                "emoji": false,
            },
        }),
        json!({
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": truncate(&slack_escape(message.text.trim_end()), SLACK_SECTION_MAX),
            },
        }),
    ];
    if let Some(link) = link(message).filter(|l| l.len() <= SLACK_URL_MAX) {
        blocks.push(json!({
            "type": "actions",
            "elements": [{
                "type": "button",
                "text": { "type": "plain_text", "text": "Open" },
                "url": link,
            }],
        }));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{
            "type": "mrkdwn",
            "text": slack_escape(&footer(message)),
        }],
    }));
    let fallback = format!(
        "{}: {}",
        one_line(&message.subject),
        message.text.trim_end()
    );
    json!({
        "text": truncate(&slack_escape(&fallback), SLACK_SECTION_MAX),
        "blocks": blocks,
    })
}

/// Microsoft Teams' incoming-webhook JSON (a Workflows webhook, or the
/// retired Office 365 connector's): a `message` with one Adaptive Card
/// (version 1.2, which every Teams client renders): the subject as a title,
/// the text, the event in small print, and the link as an `Action.OpenUrl`.
pub fn teams_payload(message: &Message) -> Value {
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.2",
        "body": [
            {
                "type": "TextBlock",
                "text": one_line(&message.subject),
                "size": "Medium",
                "weight": "Bolder",
                "wrap": true,
            },
            {
                "type": "TextBlock",
                "text": message.text.trim_end(),
                "wrap": true,
            },
            {
                "type": "TextBlock",
                "text": footer(message),
                "isSubtle": true,
                "size": "Small",
                "wrap": true,
            },
        ],
    });
    if let Some(link) = link(message) {
        card["actions"] = json!([{ "type": "Action.OpenUrl", "title": "Open", "url": link }]);
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }],
    })
}

/// SNS's Subject: ASCII, one line, no control characters, under 100
/// characters, starting with a letter, a digit or punctuation (what
/// `Publish` accepts); other characters become `?`.
pub fn sns_subject(message: &Message) -> String {
    let ascii: String = one_line(&message.subject)
        .chars()
        .map(|c| if c.is_ascii() { c } else { '?' })
        .collect();
    let subject = truncate(ascii.trim_start(), SNS_SUBJECT_MAX);
    // `truncate` ends with "…", not ASCII: three dots instead.
    let subject = match subject.strip_suffix('…') {
        Some(cut) => format!("{}...", &cut[..cut.len().saturating_sub(2)]),
        None => subject,
    };
    if subject.is_empty() {
        "Purser".into()
    } else {
        subject
    }
}

/// An RFC 5322 message from `from` to `to` (bare addresses), dated `date`:
/// Subject (RFC 2047 encoded when it is not ASCII), From, To, Date,
/// Message-ID (from the event id and the recipient, so a retried send is
/// recognisably the same message), MIME-Version and a `text/plain; charset=utf-8`
/// body of [`plain_text`], 8bit with CRLF line ends (quoted-printable when
/// a line would be longer than RFC 5322 allows).
pub fn email_mime(from: &str, to: &str, message: &Message, date: DateTime<Utc>) -> String {
    let from = address(from);
    let to = address(to);
    let domain = from
        .rsplit_once('@')
        .map(|(_, d)| atext(d))
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "purser.invalid".into());
    let message_id = format!(
        "<{}.{:016x}@{domain}>",
        atext(&message.event_id),
        fnv1a(to.as_bytes())
    );
    let body = plain_text(message)
        .replace("\r\n", "\n")
        .replace('\r', "\n");
    let long = body.lines().any(|l| l.len() > MIME_LINE_MAX);
    let (encoding, body) = if long {
        ("quoted-printable", quoted_printable(&body))
    } else {
        ("8bit", body.lines().collect::<Vec<_>>().join("\r\n"))
    };
    let mut mime = String::new();
    for (name, value) in [
        ("From", from.as_str()),
        ("To", to.as_str()),
        ("Subject", &encode_header(&message.subject)),
        ("Date", &date.to_rfc2822()),
        ("Message-ID", &message_id),
        ("MIME-Version", "1.0"),
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Transfer-Encoding", encoding),
        ("X-Purser-Event", &header_value(&message.event_id)),
        ("X-Purser-Kind", &header_value(&message.kind)),
    ] {
        mime.push_str(name);
        mime.push_str(": ");
        mime.push_str(value);
        mime.push_str("\r\n");
    }
    mime.push_str("\r\n");
    mime.push_str(&body);
    mime.push_str("\r\n");
    mime
}

// ------------------------------------------------------------ helpers

fn link(message: &Message) -> Option<&str> {
    message
        .link
        .as_deref()
        .filter(|l| l.starts_with("https://") || l.starts_with("http://"))
}

fn footer(message: &Message) -> String {
    format!(
        "Purser · {} · event {}",
        one_line(&message.kind),
        one_line(&message.event_id)
    )
}

/// Control characters (CR and LF among them) as spaces, runs of
/// whitespace as one, trimmed.
fn one_line(s: &str) -> String {
    s.split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// At most `max` characters, the last one `…` when cut.
fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut cut: String = s.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Slack's mrkdwn escapes: `&`, `<` and `>` (a `<` would start a link or a
/// mention).
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A header value on one line (see [`one_line`]), at most 900 bytes.
fn header_value(s: &str) -> String {
    let mut v = one_line(s);
    if v.len() > 900 {
        let mut end = 900;
        while !v.is_char_boundary(end) {
            end -= 1;
        }
        v.truncate(end);
    }
    v
}

/// A bare address for From or To: no whitespace, controls, angle brackets,
/// commas or semicolons (which would add recipients), at most 320 bytes.
fn address(s: &str) -> String {
    let a: String = s
        .chars()
        .filter(|c| !(c.is_whitespace() || c.is_control() || "<>,;\"()[]\\:".contains(*c)))
        .collect();
    header_value(&a)
}

/// Characters allowed in a Message-ID's parts (a dot-atom's, less a few).
fn atext(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-._+=".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(128)
        .collect()
}

/// The Subject: as it is when printable ASCII, else RFC 2047 encoded-words
/// (UTF-8, Q encoding), each at most 75 characters, folded onto lines of
/// their own.
fn encode_header(s: &str) -> String {
    let value = header_value(s);
    if value.chars().all(|c| c.is_ascii() && !c.is_ascii_control()) {
        return value;
    }
    const OPEN: &str = "=?utf-8?q?";
    const CLOSE: &str = "?=";
    let room = 75 - OPEN.len() - CLOSE.len();
    let mut words = Vec::new();
    let mut word = String::new();
    for c in value.chars() {
        let mut buf = [0u8; 4];
        let encoded: String = c
            .encode_utf8(&mut buf)
            .bytes()
            .map(|b| match b {
                b' ' => "_".to_owned(),
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'!' | b'*' | b'+' | b'-' | b'/' => {
                    (b as char).to_string()
                }
                _ => format!("={b:02X}"),
            })
            .collect();
        if word.len() + encoded.len() > room {
            words.push(format!("{OPEN}{word}{CLOSE}"));
            word.clear();
        }
        word.push_str(&encoded);
    }
    if !word.is_empty() {
        words.push(format!("{OPEN}{word}{CLOSE}"));
    }
    words.join("\r\n ")
}

/// Quoted-printable (RFC 2045) with CRLF line ends and soft breaks before
/// 76 characters.
fn quoted_printable(text: &str) -> String {
    let mut out = Vec::new();
    for line in text.split('\n') {
        let mut encoded = String::new();
        let mut width = 0;
        let bytes = line.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            let last = i + 1 == bytes.len();
            let piece = match b {
                b'=' => "=3D".to_owned(),
                b' ' | b'\t' if last => format!("={b:02X}"),
                b' ' | b'\t' | 33..=126 => (b as char).to_string(),
                _ => format!("={b:02X}"),
            };
            if width + piece.len() > 75 {
                encoded.push_str("=\r\n");
                width = 0;
            }
            width += piece.len();
            encoded.push_str(&piece);
        }
        out.push(encoded);
    }
    out.join("\r\n")
}

/// FNV-1a, 64 bits: a stable hash (std's may change between releases).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// How much of a webhook's answer an error keeps.
const ANSWER_MAX: usize = 200;

/// The first line of a webhook's answer, short, with its URL taken out.
pub fn webhook_answer(body: &str, webhook: &WebhookUrl) -> String {
    let line = body.lines().next().unwrap_or("").trim();
    scrub(&line.chars().take(ANSWER_MAX).collect::<String>(), webhook)
}

/// A webhook's answer `status` (not 2xx) as an error: 429 and 5xx may pass,
/// any other 4xx means the webhook is gone or refuses this message.
/// `answer` is what `webhook_answer` kept of the body.
pub fn webhook_error(
    channel: &str,
    webhook: &WebhookUrl,
    status: u16,
    answer: &str,
) -> NotifyError {
    let channel = format!("{channel} webhook {}", webhook.redacted());
    let answered = if answer.is_empty() {
        format!("answered {status}")
    } else {
        format!("answered {status} ({answer})")
    };
    if status == 429 || !(400..500).contains(&status) {
        NotifyError::Unavailable {
            channel,
            message: answered,
        }
    } else {
        NotifyError::Refused {
            channel,
            message: format!(
                "{answered}: the webhook was removed or its URL is wrong; ask the team for a new one"
            ),
        }
    }
}

/// `text` with the webhook's URL (and its path) replaced by its host, so no
/// error or log line carries the secret.
pub fn scrub(text: &str, webhook: &WebhookUrl) -> String {
    let url = webhook.expose();
    let mut text = text.replace(url, &webhook.redacted());
    if let Some(path) = url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.find('/').map(|i| &rest[i..]))
        .filter(|p| p.len() > 1)
    {
        text = text.replace(path, "/…");
    }
    text
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn message() -> Message {
        Message {
            event_id: "7f3c-11".into(),
            kind: "AccountReady".into(),
            subject: "Your account for payments is ready".into(),
            text: "Account 123456789012 is ready.\n\nSign in below.".into(),
            link: Some("https://d-123.awsapps.com/start".into()),
        }
    }

    fn date() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, 10, 0, 0).unwrap()
    }

    #[test]
    fn plain_text_ends_with_the_link() {
        assert_eq!(
            plain_text(&message()),
            "Account 123456789012 is ready.\n\nSign in below.\n\nhttps://d-123.awsapps.com/start"
        );
        let no_link = Message {
            link: None,
            ..message()
        };
        assert_eq!(
            plain_text(&no_link),
            "Account 123456789012 is ready.\n\nSign in below."
        );
    }

    #[test]
    fn slack_has_a_fallback_a_header_the_text_and_a_button() {
        let p = slack_payload(&message());
        assert_eq!(
            p["text"],
            "Your account for payments is ready: Account 123456789012 is ready.\n\nSign in below."
        );
        let blocks = p["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["type"], "header");
        assert_eq!(blocks[0]["text"]["type"], "plain_text");
        assert_eq!(
            blocks[0]["text"]["text"],
            "Your account for payments is ready"
        );
        assert_eq!(blocks[1]["type"], "section");
        assert_eq!(blocks[1]["text"]["type"], "mrkdwn");
        assert_eq!(
            blocks[1]["text"]["text"],
            "Account 123456789012 is ready.\n\nSign in below."
        );
        assert_eq!(blocks[2]["type"], "actions");
        assert_eq!(blocks[2]["elements"][0]["type"], "button");
        assert_eq!(
            blocks[2]["elements"][0]["url"],
            "https://d-123.awsapps.com/start"
        );
        assert_eq!(blocks[3]["type"], "context");
        assert_eq!(
            blocks[3]["elements"][0]["text"],
            "Purser · AccountReady · event 7f3c-11"
        );
    }

    #[test]
    fn slack_escapes_its_markup_and_keeps_within_its_limits() {
        let m = Message {
            subject: "x".repeat(200),
            text: format!("<!channel> & <https://evil|click> {}", "y".repeat(4000)),
            link: None,
            ..message()
        };
        let p = slack_payload(&m);
        let header = p["blocks"][0]["text"]["text"].as_str().unwrap();
        assert_eq!(header.chars().count(), SLACK_HEADER_MAX);
        assert!(header.ends_with('…'));
        let section = p["blocks"][1]["text"]["text"].as_str().unwrap();
        assert!(section.starts_with("&lt;!channel&gt; &amp; &lt;https://evil|click&gt; "));
        assert_eq!(section.chars().count(), SLACK_SECTION_MAX);
        assert!(!p["text"].as_str().unwrap().contains('<'));
        // No link, no button.
        assert_eq!(p["blocks"][2]["type"], "context");
    }

    #[test]
    fn teams_is_a_message_with_one_adaptive_card() {
        let p = teams_payload(&message());
        assert_eq!(p["type"], "message");
        let attachments = p["attachments"].as_array().unwrap();
        assert_eq!(attachments.len(), 1);
        assert_eq!(
            attachments[0]["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        let card = &attachments[0]["content"];
        assert_eq!(card["type"], "AdaptiveCard");
        assert_eq!(card["version"], "1.2");
        assert_eq!(
            card["$schema"],
            "http://adaptivecards.io/schemas/adaptive-card.json"
        );
        assert_eq!(
            card["body"][0]["text"],
            "Your account for payments is ready"
        );
        assert_eq!(card["body"][0]["weight"], "Bolder");
        assert_eq!(
            card["body"][1]["text"],
            "Account 123456789012 is ready.\n\nSign in below."
        );
        assert_eq!(card["body"][1]["wrap"], true);
        assert_eq!(card["actions"][0]["type"], "Action.OpenUrl");
        assert_eq!(card["actions"][0]["url"], "https://d-123.awsapps.com/start");
        let no_link = teams_payload(&Message {
            link: None,
            ..message()
        });
        assert!(
            no_link["attachments"][0]["content"]
                .get("actions")
                .is_none()
        );
    }

    #[test]
    fn a_link_that_is_not_http_is_left_out_of_buttons() {
        let m = Message {
            link: Some("javascript:alert(1)".into()),
            ..message()
        };
        assert!(teams_payload(&m)["attachments"][0]["content"]["actions"].is_null());
        let slack = slack_payload(&m);
        assert!(
            slack["blocks"]
                .as_array()
                .unwrap()
                .iter()
                .all(|b| b["type"] != "actions")
        );
    }

    #[test]
    fn sns_subjects_are_one_ascii_line_under_100_characters() {
        assert_eq!(
            sns_subject(&message()),
            "Your account for payments is ready"
        );
        let m = Message {
            subject: "  Budget\r\nreached: café ☕".into(),
            ..message()
        };
        assert_eq!(sns_subject(&m), "Budget reached: caf? ?");
        let long = sns_subject(&Message {
            subject: "z".repeat(300),
            ..message()
        });
        assert!(long.len() < 100, "{}", long.len());
        assert!(long.ends_with("..."));
        assert!(long.is_ascii());
        let empty = sns_subject(&Message {
            subject: "\n".into(),
            ..message()
        });
        assert_eq!(empty, "Purser");
    }

    #[test]
    fn an_email_has_its_headers_and_a_plain_text_body() {
        let mime = email_mime("purser@example.com", "ana@example.com", &message(), date());
        let (head, body) = mime.split_once("\r\n\r\n").unwrap();
        let headers: Vec<&str> = head.split("\r\n").collect();
        assert!(headers.contains(&"From: purser@example.com"));
        assert!(headers.contains(&"To: ana@example.com"));
        assert!(headers.contains(&"Subject: Your account for payments is ready"));
        assert!(headers.contains(&"Date: Sat, 21 Nov 2026 10:00:00 +0000"));
        assert!(headers.contains(&"MIME-Version: 1.0"));
        assert!(headers.contains(&"Content-Type: text/plain; charset=utf-8"));
        assert!(headers.contains(&"Content-Transfer-Encoding: 8bit"));
        let id = headers
            .iter()
            .find_map(|h| h.strip_prefix("Message-ID: "))
            .unwrap();
        assert!(
            id.starts_with("<7f3c-11.") && id.ends_with("@example.com>"),
            "{id}"
        );
        assert_eq!(
            body,
            "Account 123456789012 is ready.\r\n\r\nSign in below.\r\n\r\nhttps://d-123.awsapps.com/start\r\n"
        );
    }

    #[test]
    fn the_message_id_is_the_same_for_a_retry_and_differs_by_recipient() {
        let id = |to: &str| {
            let mime = email_mime("purser@example.com", to, &message(), date());
            mime.lines()
                .find_map(|l| l.strip_prefix("Message-ID: ").map(str::to_owned))
                .unwrap()
        };
        assert_eq!(id("ana@example.com"), id("ana@example.com"));
        assert_ne!(id("ana@example.com"), id("bo@example.com"));
    }

    #[test]
    fn no_header_can_be_injected() {
        let m = Message {
            event_id: "e1\r\nBcc: eve@example.com".into(),
            kind: "Kind\nX-Evil: 1".into(),
            subject: "Hello\r\nBcc: eve@example.com\r\n\r\nbody".into(),
            ..message()
        };
        let mime = email_mime(
            "purser@example.com\r\nBcc: eve@example.com",
            "ana@example.com\nCc: mallory@example.com, <x@y>",
            &m,
            date(),
        );
        let head = mime.split_once("\r\n\r\n").unwrap().0;
        for line in head.split("\r\n") {
            assert!(
                !line.starts_with("Bcc") && !line.starts_with("Cc") && !line.starts_with("X-Evil"),
                "{line}"
            );
        }
        assert!(!head.contains('\n') || head.split("\r\n").all(|l| !l.contains(['\r', '\n'])));
        assert!(head.contains("Subject: Hello Bcc: eve@example.com body"));
        assert!(head.contains("To: ana@example.comCc"));
    }

    #[test]
    fn a_subject_that_is_not_ascii_is_encoded_in_folded_words() {
        let m = Message {
            subject: format!("Budget de l'équipe atteint {}", "é".repeat(40)),
            ..message()
        };
        let mime = email_mime("p@example.com", "a@example.com", &m, date());
        let head = mime.split_once("\r\n\r\n").unwrap().0;
        let start = head.find("Subject: ").unwrap();
        let subject: Vec<&str> = head[start..]
            .split("\r\n")
            .take_while(|l| l.starts_with("Subject: ") || l.starts_with(' '))
            .collect();
        assert!(subject.len() > 1, "folded: {subject:?}");
        for (i, line) in subject.iter().enumerate() {
            let word = if i == 0 {
                line.strip_prefix("Subject: ").unwrap()
            } else {
                line.strip_prefix(' ').unwrap()
            };
            assert!(
                word.starts_with("=?utf-8?q?") && word.ends_with("?="),
                "{word}"
            );
            assert!(word.len() <= 75, "{word}");
            assert!(word.is_ascii());
        }
        assert!(subject[0].contains("Budget_de_l=27=C3=A9quipe"));
    }

    #[test]
    fn a_very_long_line_is_sent_quoted_printable() {
        let m = Message {
            text: format!("{}=é", "a".repeat(1200)),
            link: None,
            ..message()
        };
        let mime = email_mime("p@example.com", "a@example.com", &m, date());
        assert!(mime.contains("Content-Transfer-Encoding: quoted-printable\r\n"));
        let body = mime.split_once("\r\n\r\n").unwrap().1;
        assert!(body.split("\r\n").all(|l| l.len() <= 76));
        assert!(body.trim_end().ends_with("=3D=C3=A9"));
    }

    #[test]
    fn fnv_is_the_published_function() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
