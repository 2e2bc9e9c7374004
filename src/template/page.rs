//! HTML pages (the `rewardbench report` page) rendered by minijinja with HTML autoescaping.

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;

use super::TemplateError;

/// Renders the HTML template `source` (called `name` in errors) with `ctx`. Every `{{ }}` is
/// HTML-escaped; a template marks the strings it trusts (its own SVG and JSON) with `|safe`.
/// An undefined variable is an error, not an empty string.
pub fn page(name: &str, source: &str, ctx: impl Serialize) -> Result<String, TemplateError> {
    let err = |e: minijinja::Error| TemplateError::Page {
        name: name.to_string(),
        message: format!("{e:#}"),
    };
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.add_template(name, source).map_err(err)?;
    env.get_template(name)
        .map_err(err)?
        .render(minijinja::value::Serde(ctx))
        .map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_values_and_keeps_safe_ones() {
        let out = page(
            "t.html",
            "<p>{{ a }}</p>{{ b|safe }}",
            serde_json::json!({"a": "<script>x</script> & \"q\"", "b": "<svg></svg>"}),
        )
        .unwrap();
        assert_eq!(
            out,
            "<p>&lt;script&gt;x&lt;&#x2f;script&gt; &amp; &quot;q&quot;</p><svg></svg>"
        );
    }

    #[test]
    fn undefined_is_an_error_naming_the_template() {
        let e = page("t.html", "{{ nope.x }}", serde_json::json!({})).unwrap_err();
        assert!(e.to_string().contains("t.html"), "{e}");
    }
}
