//! Pause reason codes, overruns and the status on sign-in (PROTOCOL.md §10.2, §10.3).
//!
//! With an empty `pause_reasons` list (the default) any reason of 1–200
//! characters is accepted, as in v1. Once an admin lists codes, every pause must
//! name one. A code may carry `max_minutes`; when a pause runs past it the
//! hub's own timer sets `pause_overrun_since_ms` (see
//! [`Event::PauseOverrun`](super::Event::PauseOverrun)), so a wallboard can
//! flag a break that ran over.

use super::record::{AgentRecord, Settings, Status};
use crate::error::HubError;
use crate::text;
use serde::{Deserialize, Deserializer, Serialize};

/// Longest code or label.
pub const MAX_CODE_LEN: usize = 200;
/// Most codes a tenant may list.
pub const MAX_PAUSE_REASONS: usize = 100;
/// Longest `max_minutes` (one day).
pub const MAX_PAUSE_MINUTES: f64 = 1440.0;
/// Longest `restore_window_s` (one week).
pub const MAX_RESTORE_WINDOW_S: u32 = 7 * 86_400;
/// Longest `wrap_up_seconds` (one day).
pub const MAX_WRAP_UP_SECONDS: u32 = 86_400;

/// One admin-defined pause reason: `{"code", "label", "max_minutes"?}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PauseReason {
    pub code: String,
    pub label: String,
    /// Fractional minutes allowed (`0.02` is 1.2 s); none: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_minutes: Option<f64>,
}

impl PauseReason {
    /// The limit in milliseconds, if the code has one.
    pub fn max_ms(&self) -> Option<u64> {
        // Validated finite, positive and at most a day: the cast is exact enough.
        self.max_minutes.map(|m| (m * 60_000.0).round() as u64)
    }
}

/// What the first device up does to an offline agent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignInStatus {
    /// Available (v1).
    #[default]
    Available,
    /// Paused with `sign_in_reason`.
    Paused,
    /// Paused again with the same reason when the agent went offline while
    /// paused less than `restore_window_s` ago; else available.
    Restore,
}

/// The pause an agent was on when it went offline (for `restore`). Kept in
/// the record so every node restores the same way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflinePause {
    pub reason: String,
    pub at_ms: u64,
}

/// Checks a pause reason against the tenant's codes: `bad_request` listing
/// the allowed codes when codes are set and `reason` is not one of them.
pub fn check_reason(settings: &Settings, reason: &str) -> Result<(), HubError> {
    let codes = &settings.pause_reasons;
    if codes.is_empty() || codes.iter().any(|c| c.code == reason) {
        return Ok(());
    }
    let allowed: Vec<&str> = codes.iter().map(|c| c.code.as_str()).collect();
    Err(HubError::bad_request(format!(
        "pause reason {reason:?} is not one of the allowed codes: {}",
        allowed.join(", ")
    )))
}

/// When the record's current pause overruns its code's limit, if ever.
pub fn overrun_at(record: &AgentRecord, settings: &Settings) -> Option<u64> {
    if record.status != Status::Paused {
        return None;
    }
    let reason = record.pause_reason.as_deref()?;
    let code = settings.pause_reasons.iter().find(|c| c.code == reason)?;
    Some(record.status_since_ms + code.max_ms()?)
}

/// The pause (reason) an agent coming online gets, per `sign_in_status`.
pub fn sign_in_pause(record: &AgentRecord, settings: &Settings, now_ms: u64) -> Option<String> {
    match settings.sign_in_status {
        SignInStatus::Available => None,
        SignInStatus::Paused => Some(settings.sign_in_reason.clone()),
        SignInStatus::Restore => record
            .paused_when_offline
            .as_ref()
            .filter(|p| now_ms < p.at_ms + u64::from(settings.restore_window_s) * 1000)
            .map(|p| p.reason.clone()),
    }
}

/// Validates the PROTOCOL.md §10.2/§10.3 settings together (a patch is checked after it
/// is laid over the current settings, so cross-field rules hold).
pub fn validate_settings(s: &Settings) -> Result<(), String> {
    if s.pause_reasons.len() > MAX_PAUSE_REASONS {
        return Err(format!(
            "pause_reasons may list at most {MAX_PAUSE_REASONS} codes"
        ));
    }
    for (i, r) in s.pause_reasons.iter().enumerate() {
        if r.code.trim().is_empty() || !text::within(&r.code, 1, MAX_CODE_LEN) {
            return Err(format!(
                "pause_reasons[{i}].code must be 1 to {MAX_CODE_LEN} characters"
            ));
        }
        if r.label.trim().is_empty() || !text::within(&r.label, 1, MAX_CODE_LEN) {
            return Err(format!(
                "pause_reasons[{i}].label must be 1 to {MAX_CODE_LEN} characters"
            ));
        }
        if let Some(m) = r.max_minutes {
            if !(m.is_finite() && m > 0.0 && m <= MAX_PAUSE_MINUTES) {
                return Err(format!(
                    "pause_reasons[{i}].max_minutes must be above 0 and at most {MAX_PAUSE_MINUTES}"
                ));
            }
        }
        if s.pause_reasons[..i].iter().any(|o| o.code == r.code) {
            return Err(format!("pause_reasons[{i}].code {:?} is repeated", r.code));
        }
    }
    if s.sign_in_reason.trim().is_empty() || !text::within(&s.sign_in_reason, 1, MAX_CODE_LEN) {
        return Err(format!(
            "sign_in_reason must be 1 to {MAX_CODE_LEN} characters"
        ));
    }
    // Only a reason the hub will use must be a code: `sign_in_reason` is
    // unused unless `sign_in_status` is `paused`, so a tenant may list codes
    // without also listing the default "signed_in".
    if s.sign_in_status == SignInStatus::Paused
        && !s.pause_reasons.is_empty()
        && !s.pause_reasons.iter().any(|c| c.code == s.sign_in_reason)
    {
        return Err(format!(
            "sign_in_reason {:?} must be one of the pause_reasons codes",
            s.sign_in_reason
        ));
    }
    if s.wrap_up_seconds > MAX_WRAP_UP_SECONDS {
        return Err(format!(
            "wrap_up_seconds must be at most {MAX_WRAP_UP_SECONDS}"
        ));
    }
    if s.restore_window_s > MAX_RESTORE_WINDOW_S {
        return Err(format!(
            "restore_window_s must be at most {MAX_RESTORE_WINDOW_S}"
        ));
    }
    s.capacity.validate()
}

/// Reads `pause_reasons`, also from `{}`: Redis' Lua `cjson` writes an empty
/// array back as an empty object when it patches the settings.
pub fn reasons_or_empty_object<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<PauseReason>, D::Error> {
    // A visitor rather than an untagged enum: serde's error for a list
    // then names the member at fault ("missing field `label`"), where an
    // untagged enum only says that no shape matched.
    struct Reasons;
    impl<'de> serde::de::Visitor<'de> for Reasons {
        type Value = Vec<PauseReason>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list of pause reasons (or {})")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            Vec::<PauseReason>::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            match map.next_key::<String>()? {
                None => Ok(Vec::new()),
                Some(member) => Err(serde::de::Error::custom(format!(
                    "pause_reasons must be a list (an object only when empty), found member `{member}`"
                ))),
            }
        }
    }
    d.deserialize_any(Reasons)
}

pub fn default_sign_in_reason() -> String {
    "signed_in".into()
}

pub fn default_restore_window_s() -> u32 {
    3600
}

pub fn is_default_sign_in_reason(reason: &String) -> bool {
    *reason == default_sign_in_reason()
}

pub fn is_default_restore_window_s(window: &u32) -> bool {
    *window == default_restore_window_s()
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use crate::domain::{Actor, Event, Role};
    use crate::error::ErrorCode;

    fn coded() -> Settings {
        Settings {
            pause_reasons: vec![
                PauseReason {
                    code: "break".into(),
                    label: "Break".into(),
                    max_minutes: Some(15.0),
                },
                PauseReason {
                    code: "training".into(),
                    label: "Training".into(),
                    max_minutes: None,
                },
            ],
            ..Settings::default()
        }
    }

    #[test]
    fn with_codes_every_pause_names_one() {
        let s = coded();
        let online = ok(&agent(), up("d1"), &s);
        let e = at(&online, &pause("nap"), &s, NOW).expect_err("unlisted");
        assert_eq!(e.code, ErrorCode::BadRequest);
        assert!(e.message.contains("break, training"), "{}", e.message);
        // Also while busy (a pending pause) and for a supervisor: same rule.
        let busy = ok(&online, start("k1", sales()), &s);
        assert_eq!(
            at(&busy, &pause("nap"), &s, NOW).map_err(|e| e.code),
            Err(ErrorCode::BadRequest)
        );
        assert_eq!(
            ok(&online, pause("break"), &s).pause_reason.as_deref(),
            Some("break")
        );
        // Without codes, any reason (v1).
        assert!(ok(&online, pause("nap"), &Settings::default()).status == Status::Paused);
    }

    #[test]
    fn an_overrun_is_marked_once_by_the_timer_for_that_very_pause() {
        let s = coded();
        let p = ok(&ok(&agent(), up("d1"), &s), pause("break"), &s);
        assert_eq!(p.pause_overrun_since_ms, None);
        let limit = NOW + 15 * 60_000;
        assert_eq!(overrun_at(&p, &s), Some(limit));
        let fire = |paused_since_ms, reason: &str| Event::PauseOverrun {
            paused_since_ms,
            reason: reason.into(),
        };
        assert_eq!(
            at(&p, &fire(NOW, "break"), &s, limit - 1),
            Ok(None),
            "early"
        );
        assert_eq!(
            at(&p, &fire(NOW - 1, "break"), &s, limit),
            Ok(None),
            "another pause"
        );
        assert_eq!(
            at(&p, &fire(NOW, "lunch"), &s, limit),
            Ok(None),
            "another reason"
        );
        let over = at(&p, &fire(NOW, "break"), &s, limit + 5)
            .expect("ok")
            .expect("marked");
        assert_eq!(
            over.pause_overrun_since_ms,
            Some(limit),
            "when the limit passed"
        );
        assert_eq!(over.changed_by, p.changed_by, "the pause keeps its author");
        assert_eq!(
            at(&over, &fire(NOW, "break"), &s, limit + 9),
            Ok(None),
            "duplicate"
        );
        // Leaving the pause clears the mark.
        let back = ok(&over, Event::Unpause, &s);
        assert_eq!(
            (back.status, back.pause_overrun_since_ms),
            (Status::Available, None)
        );
        // A code without a limit never overruns.
        let t = ok(&ok(&agent(), up("d1"), &s), pause("training"), &s);
        assert_eq!(overrun_at(&t, &s), None);
        // An admin who moves the limit past the mark, or lifts it, clears
        // it (the next change of the record, e.g. the settings' own
        // renormalization); the same limit keeps it.
        let same = at(&over, &Event::Renormalize, &s, limit + 10).expect("ok");
        assert_eq!(same, None, "nothing to change");
        let mut longer = s.clone();
        longer.pause_reasons[0].max_minutes = Some(30.0);
        let cleared = at(&over, &Event::Renormalize, &longer, limit + 10)
            .expect("ok")
            .expect("changed");
        assert_eq!(cleared.pause_overrun_since_ms, None);
        let mut lifted = s.clone();
        lifted.pause_reasons[0].max_minutes = None;
        let cleared = at(&over, &Event::Renormalize, &lifted, limit + 10)
            .expect("ok")
            .expect("changed");
        assert_eq!(cleared.pause_overrun_since_ms, None);
    }

    #[test]
    fn sign_in_status_available_paused_and_restore() {
        let paused_on_sign_in = Settings {
            sign_in_status: SignInStatus::Paused,
            sign_in_reason: "training".into(),
            ..coded()
        };
        let r = ok(&agent(), up("d1"), &paused_on_sign_in);
        assert_eq!(
            (r.status, r.pause_reason.as_deref()),
            (Status::Paused, Some("training"))
        );

        let restore = Settings {
            sign_in_status: SignInStatus::Restore,
            restore_window_s: 60,
            ..coded()
        };
        let on_break = ok(&ok(&agent(), up("d1"), &restore), pause("break"), &restore);
        let gone = ok(&on_break, down("d1"), &restore);
        assert_eq!(
            gone.paused_when_offline.as_ref().map(|p| p.reason.as_str()),
            Some("break")
        );
        let back = at(&gone, &up("d1"), &restore, NOW + 59_999)
            .expect("ok")
            .expect("changes");
        assert_eq!(
            (back.status, back.pause_reason.as_deref()),
            (Status::Paused, Some("break"))
        );
        assert_eq!(back.paused_when_offline, None);
        let late = at(&gone, &up("d1"), &restore, NOW + 60_000)
            .expect("ok")
            .expect("changes");
        assert_eq!(late.status, Status::Available, "outside the window");
        // Offline while available: back available.
        let avail = ok(
            &ok(&ok(&agent(), up("d1"), &restore), down("d1"), &restore),
            up("d1"),
            &restore,
        );
        assert_eq!(avail.status, Status::Available);
        // A sign-out is deliberate: nothing to restore.
        let signed_out = ok(&on_break, Event::SignOut, &restore);
        assert_eq!(
            ok(&signed_out, up("d1"), &restore).status,
            Status::Available
        );
        let _ = Actor::new("x", Role::Agent);
    }

    #[test]
    fn settings_are_validated_together() {
        let mut s = coded();
        // `sign_in_reason` is unused unless `sign_in_status` is `paused`.
        assert_eq!(validate_settings(&s), Ok(()));
        s.sign_in_status = SignInStatus::Paused;
        assert_eq!(
            validate_settings(&s),
            Err("sign_in_reason \"signed_in\" must be one of the pause_reasons codes".into())
        );
        s.sign_in_reason = "break".into();
        assert_eq!(validate_settings(&s), Ok(()));
        let mut greek = coded();
        greek.pause_reasons[0].label = "Διάλειμμα".repeat(20);
        assert_eq!(
            validate_settings(&greek),
            Ok(()),
            "180 characters, 360 bytes"
        );
        for (bad, what) in [
            (
                PauseReason {
                    code: "".into(),
                    label: "x".into(),
                    max_minutes: None,
                },
                "code",
            ),
            (
                PauseReason {
                    code: "x".into(),
                    label: " ".into(),
                    max_minutes: None,
                },
                "label",
            ),
            (
                PauseReason {
                    code: "x".into(),
                    label: "x".into(),
                    max_minutes: Some(0.0),
                },
                "max_minutes",
            ),
            (
                PauseReason {
                    code: "x".into(),
                    label: "x".into(),
                    max_minutes: Some(f64::NAN),
                },
                "max_minutes",
            ),
            (
                PauseReason {
                    code: "break".into(),
                    label: "x".into(),
                    max_minutes: None,
                },
                "repeated",
            ),
        ] {
            let mut t = s.clone();
            t.pause_reasons.push(bad);
            let e = validate_settings(&t).expect_err(what);
            assert!(e.contains(what), "{e}");
        }
        assert!(validate_settings(&Settings {
            restore_window_s: MAX_RESTORE_WINDOW_S + 1,
            ..Settings::default()
        })
        .is_err());
        assert_eq!(validate_settings(&Settings::default()), Ok(()));
    }

    #[test]
    fn an_empty_list_stored_as_an_object_reads_back_empty() {
        let s: Settings =
            serde_json::from_str(r#"{"pause_reasons": {}}"#).expect("lua's empty array");
        assert!(s.pause_reasons.is_empty());
        assert!(serde_json::from_str::<Settings>(r#"{"pause_reasons": {"x": 1}}"#).is_err());
        let round: Settings =
            serde_json::from_value(serde_json::to_value(coded()).expect("json")).expect("back");
        assert_eq!(round, coded());
    }

    #[test]
    fn max_minutes_are_fractional_minutes_in_milliseconds() {
        let code = |max_minutes| PauseReason {
            code: "c".into(),
            label: "C".into(),
            max_minutes,
        };
        assert_eq!(code(Some(0.02)).max_ms(), Some(1_200));
        assert_eq!(code(Some(15.0)).max_ms(), Some(900_000));
        assert_eq!(code(None).max_ms(), None);
    }

    #[test]
    fn settings_limits_hold_at_their_edges() {
        let reasons = |n: usize| Settings {
            pause_reasons: (0..n)
                .map(|i| PauseReason {
                    code: format!("c{i}"),
                    label: format!("C{i}"),
                    max_minutes: None,
                })
                .collect(),
            sign_in_status: SignInStatus::Available,
            ..Settings::default()
        };
        assert_eq!(validate_settings(&reasons(MAX_PAUSE_REASONS)), Ok(()));
        assert!(validate_settings(&reasons(MAX_PAUSE_REASONS + 1))
            .expect_err("one code too many")
            .contains("at most"));
        let too_long = "x".repeat(MAX_CODE_LEN + 1);
        for code in ["   ", too_long.as_str()] {
            let s = Settings {
                pause_reasons: vec![PauseReason {
                    code: code.into(),
                    label: "L".into(),
                    max_minutes: None,
                }],
                sign_in_status: SignInStatus::Available,
                ..Settings::default()
            };
            assert!(
                validate_settings(&s).expect_err(code).contains(".code"),
                "{code:?}"
            );
        }
    }

    #[test]
    fn sign_in_settings_hold_at_their_edges() {
        let with = |sign_in_reason: &str, restore_window_s: u32| Settings {
            sign_in_reason: sign_in_reason.into(),
            restore_window_s,
            ..Settings::default()
        };
        // PROTOCOL.md §10.3: 0 to 604 800 (a week).
        assert_eq!(validate_settings(&with("back", 604_800)), Ok(()));
        assert!(validate_settings(&with("back", 604_801))
            .expect_err("a window too long")
            .contains("restore_window_s"));
        let too_long = "x".repeat(MAX_CODE_LEN + 1);
        for reason in ["   ", too_long.as_str()] {
            assert!(
                validate_settings(&with(reason, 60))
                    .expect_err(reason)
                    .contains("sign_in_reason"),
                "{reason:?}"
            );
        }
    }

    #[test]
    fn default_sign_in_settings_are_left_out_on_the_wire_and_filled_in_when_read() {
        let wire = serde_json::to_value(Settings::default()).expect("json");
        assert!(
            wire.get("sign_in_reason").is_none() && wire.get("restore_window_s").is_none(),
            "{wire}"
        );
        let read: Settings = serde_json::from_value(wire).expect("settings");
        assert_eq!(
            (read.sign_in_reason.as_str(), read.restore_window_s),
            ("signed_in", 3600)
        );
        let custom = Settings {
            sign_in_reason: "back".into(),
            restore_window_s: 60,
            ..Settings::default()
        };
        let wire = serde_json::to_value(&custom).expect("json");
        assert_eq!(
            (
                wire["sign_in_reason"].as_str(),
                wire["restore_window_s"].as_u64()
            ),
            (Some("back"), Some(60))
        );
    }
}
