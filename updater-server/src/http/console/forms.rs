//! Pieces the console's policy and rollout forms share: the maintenance
//! window's three fields, and reading a form's API body with the API's own
//! deserializer (so a form is held to exactly the API's rules and words).

use maud::{html, Markup};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

/// A maintenance window as a form has it: cron, length in minutes, zone.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct WindowFields {
    #[serde(default)]
    pub(crate) cron: String,
    #[serde(default)]
    pub(crate) duration_minutes: String,
    #[serde(default)]
    pub(crate) tz: String,
}

impl Default for WindowFields {
    /// A new form's window: 01:00 for four hours, UTC.
    fn default() -> Self {
        WindowFields {
            cron: "0 1 * * *".into(),
            duration_minutes: "240".into(),
            tz: "UTC".into(),
        }
    }
}

impl WindowFields {
    /// The fields of a stored window (its API shape).
    pub(crate) fn of(window: &Value) -> Self {
        let text = |v: &Value| match v {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        WindowFields {
            cron: text(&window["cron"]),
            duration_minutes: text(&window["duration_minutes"]),
            tz: text(&window["tz"]),
        }
    }

    /// Whether a window was given (an empty cron means none).
    pub(crate) fn is_set(&self) -> bool {
        !self.cron.trim().is_empty()
    }

    /// The window in the API's shape.
    pub(crate) fn body(&self) -> Result<Value, String> {
        let minutes: i64 = self.duration_minutes.trim().parse().map_err(|_| {
            "invalid window: the duration must be a whole number of minutes".to_owned()
        })?;
        Ok(json!({"cron": self.cron.trim(), "duration_minutes": minutes, "tz": self.tz.trim()}))
    }

    /// The three inputs (inside the caller's fieldset).
    pub(crate) fn inputs(&self) -> Markup {
        html! {
            label { "Starts (cron: minute hour day month weekday)" input name="cron" value=(self.cron) placeholder="0 1 * * *"; }
            label { "Lasts (minutes)" input name="duration_minutes" inputmode="numeric" value=(self.duration_minutes); }
            label { "Time zone (IANA)" input name="tz" list="zones" value=(self.tz); }
        }
    }
}

/// Reads a form's API body as the API would, naming the field it got wrong.
pub(crate) fn from_body<T: DeserializeOwned>(body: Value) -> Result<T, String> {
    serde_path_to_error::deserialize(body).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            e.into_inner().to_string()
        } else {
            format!("invalid {path}: {}", e.into_inner())
        }
    })
}
