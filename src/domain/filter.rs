//! Payload filters: a list of conditions on the event's JSON envelope, all of which must hold for a
//! webhook to receive the event. Validated when a webhook is saved (naming the bad condition), and
//! evaluated at fan-out time against `{"event_type", "data", ...}`.

use super::ValidationError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::cmp::Ordering;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
    Contains,
    Exists,
}

/// `{"path": "data.tier", "op": "eq", "value": "Gold"}`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    pub path: String,
    pub op: Op,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub value: Value,
}

/// A validated filter; empty means "every event of the subscribed types".
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Filter(Vec<Condition>);

impl Filter {
    pub const MAX_CONDITIONS: usize = 20;

    /// Parses the API/wizard JSON (`null` or an array of conditions).
    pub fn parse(raw: &Value) -> Result<Self, ValidationError> {
        let items = match raw {
            Value::Null => return Ok(Self::default()),
            Value::Array(items) => items,
            _ => {
                return Err(ValidationError::new(
                    "filter",
                    "filter must be a list of conditions",
                ))
            }
        };
        if items.len() > Self::MAX_CONDITIONS {
            return Err(ValidationError::new(
                "filter",
                format!(
                    "filter may have at most {} conditions",
                    Self::MAX_CONDITIONS
                ),
            ));
        }
        let mut conditions = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let field = format!("filter[{i}]");
            let c: Condition = serde_json::from_value(item.clone()).map_err(|e| {
                ValidationError::new(
                    &field,
                    format!("condition {} is not {{path, op, value}} with op one of eq, ne, gt, gte, lt, lte, in, contains, exists ({e})", i + 1),
                )
            })?;
            c.validate()
                .map_err(|m| ValidationError::new(&field, format!("condition {}: {m}", i + 1)))?;
            conditions.push(c);
        }
        Ok(Self(conditions))
    }

    pub fn conditions(&self) -> &[Condition] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when every condition holds for `doc` (the envelope as JSON).
    pub fn matches(&self, doc: &Value) -> bool {
        self.0.iter().all(|c| c.holds(doc))
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("plain data")
    }
}

impl Condition {
    fn validate(&self) -> Result<(), String> {
        let path_ok = !self.path.is_empty()
            && self.path.len() <= 200
            && self.path.split('.').all(|seg| !seg.is_empty())
            && !self.path.contains(char::is_control);
        if !path_ok {
            return Err("path must be dot-separated keys such as data.tier".into());
        }
        // PostgreSQL keeps a webhook's filter in its JSON type, which cannot hold NUL: a
        // condition with one is refused on both backends alike.
        if holds_nul(&self.value) {
            return Err("value must not contain the NUL character (U+0000)".into());
        }
        match self.op {
            Op::Exists => Ok(()),
            Op::In if !self.value.is_array() => Err("'in' needs a list value".into()),
            Op::Gt | Op::Gte | Op::Lt | Op::Lte
                if !(self.value.is_number() || self.value.is_string()) =>
            {
                Err("comparisons need a number or string value".into())
            }
            _ if self.value.is_null() && self.op != Op::Eq && self.op != Op::Ne => {
                Err("value is required".into())
            }
            _ => Ok(()),
        }
    }

    fn holds(&self, doc: &Value) -> bool {
        let found = lookup(doc, &self.path);
        match (self.op, found) {
            (Op::Exists, v) => v.is_some() == self.value.as_bool().unwrap_or(true),
            (Op::Ne, None) => true,
            (_, None) => false,
            (Op::Eq, Some(v)) => loosely_equal(v, &self.value),
            (Op::Ne, Some(v)) => !loosely_equal(v, &self.value),
            (Op::Gt, Some(v)) => compare(v, &self.value) == Some(Ordering::Greater),
            (Op::Gte, Some(v)) => matches!(
                compare(v, &self.value),
                Some(Ordering::Greater | Ordering::Equal)
            ),
            (Op::Lt, Some(v)) => compare(v, &self.value) == Some(Ordering::Less),
            (Op::Lte, Some(v)) => matches!(
                compare(v, &self.value),
                Some(Ordering::Less | Ordering::Equal)
            ),
            (Op::In, Some(v)) => self
                .value
                .as_array()
                .is_some_and(|opts| opts.iter().any(|o| loosely_equal(v, o))),
            (Op::Contains, Some(Value::String(s))) => {
                self.value.as_str().is_some_and(|needle| s.contains(needle))
            }
            (Op::Contains, Some(Value::Array(items))) => {
                items.iter().any(|i| loosely_equal(i, &self.value))
            }
            (Op::Contains, Some(_)) => false,
        }
    }
}

/// The value at a dot-separated `path` into `doc` (array items by index).
pub fn lookup<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(doc, |v, key| match v {
        Value::Object(m) => m.get(key),
        Value::Array(a) => key.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

/// Whether a JSON value holds U+0000 in any string or key.
fn holds_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        _ => false,
    }
}

/// Numbers compare by value (1 == 1.0); everything else structurally.
fn loosely_equal(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({"event_type": "member.tier_changed",
               "data": {"tier": "Gold", "points": 1200, "tags": ["vip"], "note": "big spender"}})
    }

    fn check(conds: Value) -> bool {
        Filter::parse(&conds).unwrap().matches(&doc())
    }

    #[test]
    fn every_operator_behaves() {
        assert!(check(
            json!([{"path": "data.tier", "op": "eq", "value": "Gold"}])
        ));
        assert!(!check(
            json!([{"path": "data.tier", "op": "eq", "value": "Silver"}])
        ));
        assert!(check(
            json!([{"path": "data.tier", "op": "ne", "value": "Silver"}])
        ));
        assert!(check(
            json!([{"path": "data.points", "op": "gt", "value": 1000}])
        ));
        assert!(check(
            json!([{"path": "data.points", "op": "gte", "value": 1200.0}])
        ));
        assert!(!check(
            json!([{"path": "data.points", "op": "lt", "value": 1200}])
        ));
        assert!(check(
            json!([{"path": "data.points", "op": "lte", "value": 1200}])
        ));
        assert!(check(
            json!([{"path": "data.tier", "op": "in", "value": ["Gold", "Platinum"]}])
        ));
        assert!(check(
            json!([{"path": "data.note", "op": "contains", "value": "spender"}])
        ));
        assert!(check(
            json!([{"path": "data.tags", "op": "contains", "value": "vip"}])
        ));
        assert!(check(json!([{"path": "data.tier", "op": "exists"}])));
        assert!(check(
            json!([{"path": "data.missing", "op": "exists", "value": false}])
        ));
        assert!(!check(
            json!([{"path": "data.missing", "op": "gt", "value": 1}])
        ));
        assert!(check(json!([])));
        assert!(check(Value::Null));
    }

    #[test]
    fn all_conditions_must_hold() {
        assert!(!check(json!([
            {"path": "data.tier", "op": "eq", "value": "Gold"},
            {"path": "data.points", "op": "gt", "value": 5000}
        ])));
    }

    #[test]
    fn invalid_conditions_are_named() {
        let e = Filter::parse(&json!([{"path": "data.tier", "op": "eq", "value": "Gold"},
                                      {"path": "data.x", "op": "between", "value": 1}]))
        .unwrap_err();
        assert_eq!(e.field, "filter[1]");
        let e = Filter::parse(&json!([{"path": "data.x", "op": "in", "value": 3}])).unwrap_err();
        assert!(e.message.contains("list"), "{}", e.message);
        let e = Filter::parse(&json!([{"path": "data..x", "op": "exists"}])).unwrap_err();
        assert_eq!(e.field, "filter[0]");
        assert_eq!(Filter::parse(&json!({"a": 1})).unwrap_err().field, "filter");
    }
}
