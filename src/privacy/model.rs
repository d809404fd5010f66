//! The fetal-sex detector. Pure.
//!
//! RULES.md §9.1 [V]: 人口与计划生育法 Art. 39 bans non-medical fetal sex determination; the software
//! must not store, show, print, export or expose a fetal-sex finding, and free-text fields are
//! scanned. The phrases and how text is read are data with their sources
//! (`rules/privacy/fetal-sex.toml`); this file reads text the way that file describes.

use std::sync::OnceLock;

use serde::Deserialize;

const RULES: &str = include_str!("../../rules/privacy/fetal-sex.toml");

#[derive(Debug, Deserialize)]
struct RuleFile {
    source: String,
    joiners: String,
    fold: String,
    phrase: Vec<PhraseRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PhraseRule {
    text: String,
    #[serde(default)]
    unless_before: String,
    #[serde(default)]
    unless_after: String,
}

/// One phrase, read as text is read (folded, separators dropped).
#[derive(Debug)]
struct Phrase {
    chars: Vec<char>,
    /// Latin letters only: matches as a whole word.
    word: bool,
    unless_before: Vec<char>,
    unless_after: Vec<char>,
}

/// The detector: the phrase list and the reading rules of `rules/privacy/fetal-sex.toml`.
#[derive(Debug)]
pub struct Detector {
    pub source: String,
    joiners: Vec<char>,
    fold: Vec<(char, char)>,
    phrases: Vec<Phrase>,
}

/// One character of text as the detector reads it, and whether a separator stood before it.
#[derive(Debug, Clone, Copy)]
struct Read {
    c: char,
    after_separator: bool,
}

fn fold_width_and_case(c: char) -> char {
    let c = match c {
        // Full-width ASCII (U+FF01–U+FF5E) and the ideographic space.
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        c => c,
    };
    let c = c.to_lowercase().next().unwrap_or(c);
    // Pinyin tone marks (ü is written v, as in pinyin input).
    match c {
        'ā' | 'á' | 'ǎ' | 'à' => 'a',
        'ē' | 'é' | 'ě' | 'è' => 'e',
        'ī' | 'í' | 'ǐ' | 'ì' => 'i',
        'ō' | 'ó' | 'ǒ' | 'ò' => 'o',
        'ū' | 'ú' | 'ǔ' | 'ù' => 'u',
        'ü' | 'ǖ' | 'ǘ' | 'ǚ' | 'ǜ' => 'v',
        c => c,
    }
}

fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}')
}

impl Detector {
    fn parse(text: &str) -> Result<Detector, String> {
        let file: RuleFile = toml::from_str(text).map_err(|e| format!("rules/privacy/fetal-sex.toml: {e}"))?;
        let pairs: Vec<char> = file.fold.chars().collect();
        if !pairs.len().is_multiple_of(2) {
            return Err("rules/privacy/fetal-sex.toml: fold must list pairs of characters".into());
        }
        let mut d = Detector {
            source: file.source,
            joiners: file.joiners.chars().collect(),
            fold: pairs.chunks(2).map(|p| (p[0], p[1])).collect(),
            phrases: Vec::new(),
        };
        for p in file.phrase {
            let chars: Vec<char> = d.read(&p.text).into_iter().map(|r| r.c).collect();
            if chars.is_empty() {
                return Err(format!("rules/privacy/fetal-sex.toml: empty phrase {:?}", p.text));
            }
            let word = chars.iter().all(char::is_ascii_lowercase);
            d.phrases.push(Phrase {
                chars,
                word,
                unless_before: d.read(&p.unless_before).into_iter().map(|r| r.c).collect(),
                unless_after: d.read(&p.unless_after).into_iter().map(|r| r.c).collect(),
            });
        }
        Ok(d)
    }

    /// Text as the phrases are matched against: folded, separators dropped but remembered.
    fn read(&self, text: &str) -> Vec<Read> {
        let mut out = Vec::with_capacity(text.len());
        let mut separator = false;
        for raw in text.chars() {
            let c = fold_width_and_case(raw);
            if c.is_whitespace() || is_invisible(c) || self.joiners.contains(&c) {
                separator = true;
                continue;
            }
            let c = self.fold.iter().find(|(t, _)| *t == c).map_or(c, |(_, s)| *s);
            out.push(Read {
                c,
                after_separator: separator,
            });
            separator = false;
        }
        out
    }

    /// Whether the text states the sex of a fetus.
    pub fn states_fetal_sex(&self, text: &str) -> bool {
        if text.is_empty() {
            return false;
        }
        let t = self.read(text);
        let latin = |i: usize| t.get(i).is_some_and(|r| r.c.is_ascii_lowercase());
        self.phrases.iter().any(|p| {
            let n = p.chars.len();
            (0..t.len().saturating_sub(n - 1)).any(|i| {
                if !t[i..i + n].iter().zip(&p.chars).all(|(r, c)| r.c == *c) {
                    return false;
                }
                let before = i.checked_sub(1).map(|b| t[b].c);
                let after = t.get(i + n);
                if p.word {
                    // A whole word: no letter runs into it on either side.
                    let starts = i == 0 || t[i].after_separator || !latin(i - 1);
                    let ends = after.is_none_or(|a| a.after_separator || !a.c.is_ascii_lowercase());
                    return starts && ends;
                }
                let joined_before = before.is_some_and(|b| p.unless_before.contains(&b)) && !t[i].after_separator;
                let joined_after = after.is_some_and(|a| p.unless_after.contains(&a.c) && !a.after_separator);
                !(joined_before || joined_after)
            })
        })
    }
}

/// The embedded detector, parsed once. A unit test checks the data parses; should it ever not,
/// a minimal built-in list still holds the rule (it must hold always).
pub fn detector() -> &'static Detector {
    static D: OnceLock<Detector> = OnceLock::new();
    D.get_or_init(|| {
        Detector::parse(RULES).unwrap_or_else(|e| {
            tracing::error!(error = %e, "embedded fetal-sex phrase list is invalid; using the minimal list");
            let minimal = "source = \"RULES.md §9.1 (minimal built-in list)\"\njoiners = \"\"\nfold = \"\"\n\
                           [[phrase]]\ntext = \"胎儿性别\"\n[[phrase]]\ntext = \"fetal sex\"\n";
            Detector::parse(minimal).unwrap_or(Detector {
                source: String::new(),
                joiners: Vec::new(),
                fold: Vec::new(),
                phrases: Vec::new(),
            })
        })
    })
}

/// Whether a text states the sex of a fetus (RULES.md §9.1), by the embedded phrase list.
pub fn states_fetal_sex(text: &str) -> bool {
    detector().states_fetal_sex(text)
}

/// What a page shows instead of a text that states fetal sex (one stored before the ban was
/// checked at every door, RULES.md §9.1: never displayed).
pub const WITHHELD: &str = "〔已隐去：含胎儿性别信息，依法不予显示〕";

/// A stored text as a page may show it: withheld whole when it states fetal sex.
pub fn shown(text: String) -> String {
    if states_fetal_sex(&text) {
        WITHHELD.to_string()
    } else {
        text
    }
}

/// Whether any string of a JSON document, at any depth, states fetal sex.
pub fn document_states_fetal_sex(doc: &serde_json::Value) -> bool {
    use serde_json::Value;
    match doc {
        Value::String(s) => states_fetal_sex(s),
        Value::Array(items) => items.iter().any(document_states_fetal_sex),
        Value::Object(m) => m.values().any(document_states_fetal_sex),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_list_parses_and_names_its_source() {
        let d = Detector::parse(RULES).unwrap();
        assert!(d.source.contains("§9.1"));
        assert!(d.phrases.len() >= 20);
    }

    #[test]
    fn the_probe_phrases_are_found() {
        assert!(states_fetal_sex("B超提示男胎"));
        assert!(states_fetal_sex("胎儿性别：女"));
        assert!(states_fetal_sex("超声：女胎可能大"));
        assert!(states_fetal_sex("fetal sex: male"));
    }

    #[test]
    fn spacing_and_joiners_inside_a_phrase_do_not_hide_it() {
        assert!(states_fetal_sex("男 胎"));
        assert!(states_fetal_sex("胎 儿 性 别 女"));
        assert!(states_fetal_sex("胎·儿·性·别"));
        assert!(states_fetal_sex("男\u{200B}胎"));
        assert!(states_fetal_sex("胎儿：男"));
        assert!(states_fetal_sex("Fetal   Sex"));
    }

    #[test]
    fn full_width_characters_are_read_as_ascii() {
        assert!(states_fetal_sex("ｆｅｔａｌ　ｓｅｘ"));
        assert!(states_fetal_sex("ＮＡＮ ＴＡＩ"));
        assert!(states_fetal_sex("胎儿　性别"));
    }

    #[test]
    fn traditional_characters_are_read_as_simplified() {
        assert!(states_fetal_sex("胎兒性別：男"));
        assert!(states_fetal_sex("胎兒為女"));
        assert!(states_fetal_sex("B超提示男胎（繁體）"));
    }

    #[test]
    fn pinyin_with_or_without_spaces_and_tones_is_found() {
        assert!(states_fetal_sex("nan tai"));
        assert!(states_fetal_sex("B chao ti shi nantai"));
        assert!(states_fetal_sex("nǚ tāi"));
        assert!(states_fetal_sex("nv tai"));
        assert!(states_fetal_sex("taier xingbie nv"));
        assert!(states_fetal_sex("tāi'ér xìngbié"));
    }

    #[test]
    fn ordinary_clinical_text_is_not_refused() {
        for ok in [
            "胎心 140 次/分，胎动好",
            "男，胎心正常",
            "妇女胎次 2，孕次 3",
            "胎盘位置正常，羊水清",
            "双胎妊娠，胎位 LOA",
            "建议复查血常规，注意胎动",
            "新生儿男，体重 3200g，Apgar 9-10",
            "配偶男方乙肝阳性",
            "胎儿女方家族史无异常",
            "Jinantai road",
            "antenatal visit",
            "hemoglobin 108 g/L, nantaise",
            "",
        ] {
            assert!(!states_fetal_sex(ok), "{ok:?} should be accepted");
        }
    }

    #[test]
    fn stored_text_that_states_it_is_withheld_whole() {
        assert_eq!(shown("B超提示男胎，余正常".into()), WITHHELD);
        assert_eq!(shown("胎动好".into()), "胎动好");
    }

    #[test]
    fn documents_are_scanned_at_any_depth() {
        let doc = serde_json::json!({"note": [{"text": "ok"}, {"text": "胎儿性别 男"}]});
        assert!(document_states_fetal_sex(&doc));
        assert!(!document_states_fetal_sex(
            &serde_json::json!({"gender": "male", "n": 1})
        ));
    }
}
