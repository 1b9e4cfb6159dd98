//! How a bot session ended: its exit class from `exitReason`,
//! `transferType` and, later, its bot result.

use serde::{Deserialize, Serialize};

use super::attr;

/// How a bot session ended, one class per session. docs/DESIGN.md ("KPI
/// definitions") gives each class's meaning and source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ExitClass {
    /// Never reached a queue or agent after the bot: the bot disconnected
    /// (`FLOW_DISCONNECT`), or handed back (`USER_EXIT`, `FLOW_EXIT`) and no
    /// `acd.start` followed.
    Contained,
    /// Reached a queue or agent after the bot: `TRANSFER` to ACD, USER or
    /// GROUP, `RETURN_TO_AGENT`, any `*_EXIT` followed by an `acd.start`, or a
    /// `*_EXIT` whose bot result is a transfer to ACD, a user or a group.
    Escalated,
    /// The customer left or the session expired in the bot (`DISCONNECT`,
    /// `SESSION_EXPIRE_DISCONNECT`).
    Abandoned,
    /// `RECOGNITION_FAILURE_DISCONNECT`, or `RECOGNITION_FAILURE_EXIT` not
    /// followed by a queue.
    RecognitionFailure,
    /// `FLOW_ERROR_DISCONNECT`, or `FLOW_ERROR_EXIT` not followed by a queue.
    Error,
    /// Transferred elsewhere than an agent: a number, voicemail, another flow.
    Other,
    /// `UNKNOWN`, missing, or a value this product does not know.
    Unknown,
}

impl ExitClass {
    /// The counter this class adds to.
    pub fn attr(self) -> &'static str {
        match self {
            ExitClass::Contained => attr::CONTAINED,
            ExitClass::Escalated => attr::ESCALATED,
            ExitClass::Abandoned => attr::ABANDONED,
            ExitClass::RecognitionFailure => attr::RECOGNITION_FAILURES,
            ExitClass::Error => attr::ERRORS,
            ExitClass::Other => attr::OTHER_EXITS,
            ExitClass::Unknown => attr::UNKNOWN_OUTCOMES,
        }
    }
}

/// A `flow.end` classified: its class as far as the event alone tells, and
/// whether the bot handed control back (`*_EXIT`), so a later queue can still
/// make it escalated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classified {
    /// The class as far as the event tells.
    pub class: ExitClass,
    /// `USER_EXIT`, `FLOW_EXIT`, `RECOGNITION_FAILURE_EXIT`, `FLOW_ERROR_EXIT`.
    pub handed_back: bool,
}

/// Classifies a `flow.end` by `exitReason` and `transferType` (the SDK
/// model's enums; anything else is `Unknown`).
pub fn classify(exit_reason: Option<&str>, transfer_type: Option<&str>) -> Classified {
    let class = |class| Classified {
        class,
        handed_back: false,
    };
    let back = |class| Classified {
        class,
        handed_back: true,
    };
    if transfer_type == Some("RETURN_TO_AGENT") {
        return class(ExitClass::Escalated);
    }
    match exit_reason.unwrap_or_default() {
        "TRANSFER" => match transfer_type {
            Some("ACD" | "USER" | "GROUP") => class(ExitClass::Escalated),
            Some(
                "NUMBER" | "ACD_VOICEMAIL" | "USER_VOICEMAIL" | "GROUP_VOICEMAIL" | "FLOW"
                | "SECURE_FLOW",
            ) => class(ExitClass::Other),
            _ => class(ExitClass::Unknown),
        },
        "FLOW_DISCONNECT" => class(ExitClass::Contained),
        "USER_EXIT" | "FLOW_EXIT" => back(ExitClass::Contained),
        "DISCONNECT" | "SESSION_EXPIRE_DISCONNECT" => class(ExitClass::Abandoned),
        "RECOGNITION_FAILURE_DISCONNECT" => class(ExitClass::RecognitionFailure),
        "RECOGNITION_FAILURE_EXIT" => back(ExitClass::RecognitionFailure),
        "FLOW_ERROR_DISCONNECT" => class(ExitClass::Error),
        "FLOW_ERROR_EXIT" => back(ExitClass::Error),
        _ => class(ExitClass::Unknown),
    }
}

/// A bot result that means the session went to a queue, a user or a group.
pub fn is_transfer_result(bot_result: &str) -> bool {
    matches!(
        bot_result,
        "TransferToACD" | "TransferToUser" | "TransferToGroup"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_reasons_and_transfer_types_classify_as_documented() {
        let c = |r: &str, t: Option<&str>| classify(Some(r), t);
        assert_eq!(c("FLOW_DISCONNECT", None).class, ExitClass::Contained);
        assert!(c("USER_EXIT", None).handed_back);
        assert!(c("FLOW_EXIT", None).handed_back);
        assert_eq!(c("TRANSFER", Some("ACD")).class, ExitClass::Escalated);
        assert_eq!(c("TRANSFER", Some("GROUP")).class, ExitClass::Escalated);
        assert_eq!(
            c("TRANSFER", Some("RETURN_TO_AGENT")).class,
            ExitClass::Escalated
        );
        assert_eq!(c("TRANSFER", Some("NUMBER")).class, ExitClass::Other);
        assert_eq!(c("TRANSFER", Some("SECURE_FLOW")).class, ExitClass::Other);
        assert_eq!(
            c("SESSION_EXPIRE_DISCONNECT", None).class,
            ExitClass::Abandoned
        );
        assert_eq!(
            c("RECOGNITION_FAILURE_EXIT", None),
            Classified {
                class: ExitClass::RecognitionFailure,
                handed_back: true
            }
        );
        assert_eq!(
            c("FLOW_ERROR_EXIT", None),
            Classified {
                class: ExitClass::Error,
                handed_back: true
            }
        );
        assert_eq!(c("UNKNOWN", None).class, ExitClass::Unknown);
        assert_eq!(classify(None, None).class, ExitClass::Unknown);
        assert_eq!(c("SOMETHING_NEW", None).class, ExitClass::Unknown);
    }
}
