//! Handlebars templates, embedded in the binary, strict mode (a misspelt variable fails tests),
//! HTML-escaped by default, and the few helpers the pages need.

use handlebars::{
    Context, Handlebars, Helper, HelperResult, Output, RenderContext, RenderErrorReason, handlebars_helper,
};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "templates/"]
#[include = "**/*.hbs"]
struct Templates;

#[derive(RustEmbed)]
#[folder = "templates/static/"]
pub struct Static;

handlebars_helper!(eq: |a: Json, b: Json| a == b);
handlebars_helper!(concat: |a: str, b: str| format!("{a}{b}"));
handlebars_helper!(contains: |list: Json, v: Json| list.as_array().is_some_and(|l| l.contains(v)));

/// `(list "a" "b")`: an array of the parameters, for `{{#each}}`.
struct ListHelper;

impl handlebars::HelperDef for ListHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<handlebars::ScopedJson<'rc>, handlebars::RenderError> {
        let items: Vec<serde_json::Value> = h.params().iter().map(|p| p.value().clone()).collect();
        Ok(handlebars::ScopedJson::Derived(serde_json::Value::Array(items)))
    }
}

/// `{{opt-empty value}}`: the value for an input field, or nothing (whole numbers without ".0").
fn opt_empty_helper(
    h: &Helper,
    _: &Handlebars,
    _: &Context,
    _: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let v = h.param(0).map(|p| p.value().clone()).unwrap_or_default();
    let text = match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s,
        serde_json::Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 => format!("{f:.0}"),
            _ => n.to_string(),
        },
        other => other.to_string(),
    };
    out.write(&handlebars::html_escape(&text))?;
    Ok(())
}

/// `{{err errors "field"}}`: the message for a field, or nothing.
fn err_helper(h: &Helper, _: &Handlebars, _: &Context, _: &mut RenderContext, out: &mut dyn Output) -> HelperResult {
    let errors = h.param(0).map(|p| p.value().clone()).unwrap_or_default();
    let field = h
        .param(1)
        .and_then(|p| p.value().as_str())
        .ok_or(RenderErrorReason::ParamNotFoundForIndex("err", 1))?;
    if let Some(list) = errors.as_array() {
        let msgs: Vec<&str> = list
            .iter()
            .filter(|e| e.get("field").and_then(|f| f.as_str()) == Some(field))
            .filter_map(|e| e.get("message").and_then(|m| m.as_str()))
            .collect();
        if !msgs.is_empty() {
            out.write(&handlebars::html_escape(&msgs.join("；")))?;
        }
    }
    Ok(())
}

/// `{{dt value}}`: a stored UTC timestamp shown in China time, to the minute.
fn dt_helper(h: &Helper, _: &Handlebars, _: &Context, _: &mut RenderContext, out: &mut dyn Output) -> HelperResult {
    let raw = h.param(0).and_then(|p| p.value().as_str()).unwrap_or("");
    let text = chrono::NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f")
        .map(|t| (t + chrono::Duration::hours(8)).format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|_| raw.to_string());
    out.write(&handlebars::html_escape(&text))?;
    Ok(())
}

/// `{{audit-zh "action" action}}`: an audit code as the pages name it (`audit::model::label_zh`).
fn audit_zh_helper(
    h: &Helper,
    _: &Handlebars,
    _: &Context,
    _: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let kind = h.param(0).and_then(|p| p.value().as_str()).unwrap_or("");
    let code = h.param(1).and_then(|p| p.value().as_str()).unwrap_or("");
    out.write(&handlebars::html_escape(&crate::audit::model::label_zh(kind, code)))?;
    Ok(())
}

/// `{{opt value}}`: the value, or a dash when absent.
fn opt_helper(h: &Helper, _: &Handlebars, _: &Context, _: &mut RenderContext, out: &mut dyn Output) -> HelperResult {
    let v = h.param(0).map(|p| p.value().clone()).unwrap_or_default();
    let text = match v {
        serde_json::Value::Null => "—".to_string(),
        serde_json::Value::String(s) if s.is_empty() => "—".to_string(),
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    };
    out.write(&handlebars::html_escape(&text))?;
    Ok(())
}

pub fn registry() -> anyhow::Result<Handlebars<'static>> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    for file in Templates::iter() {
        let Some(content) = Templates::get(&file) else {
            continue;
        };
        let text = std::str::from_utf8(&content.data)?;
        let name = file.trim_end_matches(".hbs");
        hb.register_template_string(name, text)
            .map_err(|e| anyhow::anyhow!("template {file}: {e}"))?;
    }
    hb.register_helper("eq", Box::new(eq));
    hb.register_helper("err", Box::new(err_helper));
    hb.register_helper("dt", Box::new(dt_helper));
    hb.register_helper("opt", Box::new(opt_helper));
    hb.register_helper("audit-zh", Box::new(audit_zh_helper));
    hb.register_helper("opt-empty", Box::new(opt_empty_helper));
    hb.register_helper("concat", Box::new(concat));
    hb.register_helper("contains", Box::new(contains));
    hb.register_helper("list", Box::new(ListHelper));
    Ok(hb)
}
