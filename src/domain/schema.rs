//! Checking an event's `data` against its type's JSON schema (the catalog's, shown on the Event
//! Types page), for programs that turn validation on per event type. The catalog's schemas use
//! `type`, `properties`, `required`, `items` and `enum`; those are the keywords checked here, and
//! the first failure is reported with its path (`data.points`, `data.items[2].sku`).

use super::ValidationError;
use serde_json::Value;

/// Checks `data` against `schema`; the error's field is the path of the first value that fails.
pub fn check(schema: &Value, data: &Value) -> Result<(), ValidationError> {
    check_at(schema, data, "data")
}

fn type_matches(ty: &str, v: &Value) -> bool {
    match ty {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        _ => true,
    }
}

fn check_at(schema: &Value, v: &Value, path: &str) -> Result<(), ValidationError> {
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !types.is_empty() && !types.iter().any(|t| type_matches(t, v)) {
        let wanted = types.join(" or ");
        let article = if wanted.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        return Err(ValidationError::new(
            path,
            format!("{path} must be {article} {wanted} (the event type's schema)"),
        ));
    }
    if let Some(Value::Array(allowed)) = schema.get("enum") {
        if !allowed.contains(v) {
            return Err(ValidationError::new(
                path,
                format!("{path} must be one of {}", Value::Array(allowed.clone())),
            ));
        }
    }
    if let Value::Object(fields) = v {
        if let Some(Value::Array(required)) = schema.get("required") {
            for name in required.iter().filter_map(Value::as_str) {
                if !fields.contains_key(name) {
                    let at = format!("{path}.{name}");
                    return Err(ValidationError::new(
                        &at,
                        format!("{at} is required by the event type's schema"),
                    ));
                }
            }
        }
        if let Some(Value::Object(props)) = schema.get("properties") {
            for (name, sub) in props {
                if let Some(value) = fields.get(name) {
                    check_at(sub, value, &format!("{path}.{name}"))?;
                }
            }
        }
    }
    if let (Value::Array(items), Some(sub)) = (v, schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            check_at(sub, item, &format!("{path}[{i}]"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalog;
    use serde_json::json;

    #[test]
    fn every_catalog_example_passes_its_own_schema() {
        for t in catalog::catalog() {
            check(&t.schema, &t.example).unwrap_or_else(|e| panic!("{}: {e}", t.name));
        }
    }

    #[test]
    fn the_first_failure_is_named_by_its_path() {
        let schema = catalog::event_type("points.awarded").unwrap().schema;
        let err = check(
            &schema,
            &json!({"user_id": "u1", "points": "many", "reason": "x", "balance": 1}),
        )
        .unwrap_err();
        assert_eq!(err.field, "data.points");
        assert!(
            err.message.contains("must be an integer"),
            "{}",
            err.message
        );
        let err = check(
            &schema,
            &json!({"user_id": "u1", "points": 5, "balance": 1}),
        )
        .unwrap_err();
        assert_eq!(err.field, "data.reason");
        let nested = json!({"type": "object", "properties": {"items": {"type": "array", "items": {"type": "object", "required": ["sku"]}}}});
        let err = check(&nested, &json!({"items": [{"sku": "a"}, {}]})).unwrap_err();
        assert_eq!(err.field, "data.items[1].sku");
        let err = check(&json!({"enum": ["a", "b"]}), &json!("c")).unwrap_err();
        assert!(err.message.contains("one of"));
        // Extra fields are allowed: the schemas list what must be there.
        check(
            &schema,
            &json!({"user_id": "u1", "points": 5, "reason": "x", "balance": 1, "extra": true}),
        )
        .unwrap();
    }
}
