//! Patterns that need the backtracking engine (lookaround, backreferences): a long text before the match
//! must not make them give up, and when one does give up the record is never treated as "no match"
//! silently: `rewrite_tag_filter` and `grep` send it to `@ERROR` (or where `on_regexp_give_up` says), the
//! regexp parsers report a parse failure.
mod common;

use common::sink;
use sluice_core::event::{Event, EventTime, Map};
use sluice_core::record;

const RRN: &str = r"/(?<!\d)\d{6}-[1-4]\d{6}(?!\d)/";
/// Exponential inside a lookahead: no prefilter or start position helps, the backtracker gives up.
const HOPELESS: &str = r"/(?=(?<x>a|aa)+\k<x>c)a/";

fn long_rrn() -> String {
    format!("{} rrn 900101-1234567", "a".repeat(500_000))
}

fn emit(conf: &str, run: &str, tag: &str, records: Vec<Map>) {
    let engine = common::engine(&conf.replace("RUN", run), "giveup.conf");
    let events = records.into_iter().map(|r| Event::new(EventTime::new(1, 0), r)).collect();
    engine.router.emit_to_label("@ROOT", tag, events).expect("emit");
}

fn error_label(run: &str) -> String {
    format!("<label @ERROR>\n <match **>\n  @type capture\n  run {run}-error\n </match>\n</label>\n")
}

#[test]
fn rewrite_tag_filter_finds_pii_after_a_long_prefix() {
    let conf = format!(
        r#"
<match app.**>
  @type rewrite_tag_filter
  <rule>
    key message
    pattern {RRN}
    tag pii.${{tag}}
  </rule>
  <rule>
    key message
    pattern /.*/
    tag other.${{tag}}
  </rule>
</match>
<match pii.** other.**>
  @type capture
  run RUN
</match>
{}"#,
        error_label("rtf-long")
    );
    emit(&conf, "rtf-long", "app.web", vec![record! {"message" => long_rrn()}, record! {"message" => "no number"}]);
    let tags: Vec<String> = sink("rtf-long").records().into_iter().map(|(t, _)| t).collect();
    assert_eq!(tags, vec!["pii.app.web", "other.app.web"]);
    assert_eq!(sink("rtf-long-error").len(), 0);
}

#[test]
fn rewrite_tag_filter_sends_undecided_records_to_error() {
    let conf = format!(
        r#"
<match app.**>
  @type rewrite_tag_filter
  <rule>
    key message
    pattern {HOPELESS}
    tag pii.${{tag}}
  </rule>
  <rule>
    key message
    pattern /.*/
    tag other.${{tag}}
  </rule>
</match>
<match pii.** other.**>
  @type capture
  run RUN
</match>
{}"#,
        error_label("rtf-hopeless")
    );
    let aaa = "a".repeat(40);
    emit(&conf, "rtf-hopeless", "app.web", vec![record! {"message" => aaa.as_str()}, record! {"message" => "b"}]);
    // The undecided record does not fall through to the catch-all rule.
    let tags: Vec<String> = sink("rtf-hopeless").records().into_iter().map(|(t, _)| t).collect();
    assert_eq!(tags, vec!["other.app.web"]);
    let errors = sink("rtf-hopeless-error").records();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].0, "app.web");
    assert_eq!(errors[0].1.get("message").and_then(|v| v.as_str()), Some(aaa.as_str()));

    // Configured otherwise: the old "no match" answer, on purpose.
    let conf = conf.replace(
        "  <rule>\n    key message\n    pattern /(?=",
        "  on_regexp_give_up no_match\n  <rule>\n    key message\n    pattern /(?=",
    );
    let conf = conf.replace("rtf-hopeless-error", "rtf-nomatch-error");
    emit(&conf, "rtf-nomatch", "app.web", vec![record! {"message" => aaa.as_str()}]);
    let tags: Vec<String> = sink("rtf-nomatch").records().into_iter().map(|(t, _)| t).collect();
    assert_eq!(tags, vec!["other.app.web"]);
    assert_eq!(sink("rtf-nomatch-error").len(), 0);
}

#[test]
fn grep_sends_undecided_records_to_error() {
    let conf = |policy: &str, run: &str| {
        format!(
            "<filter app.**>\n @type grep\n {policy}\n <exclude>\n  key message\n  pattern {HOPELESS}\n </exclude>\n</filter>\n<match app.**>\n @type capture\n run {run}\n</match>\n{}",
            error_label(run)
        )
    };
    let aaa = "a".repeat(40);
    let records =
        || vec![record! {"message" => aaa.as_str()}, record! {"message" => "aac"}, record! {"message" => "b"}];
    emit(&conf("", "grep-default"), "grep-default", "app.x", records());
    // "aac" is excluded (decided), "b" kept, the undecided one goes to @ERROR instead of passing.
    assert_eq!(sink("grep-default").messages(), vec!["b"]);
    assert_eq!(sink("grep-default-error").messages(), vec![aaa.clone()]);

    emit(&conf("on_regexp_give_up match", "grep-match"), "grep-match", "app.x", records());
    assert_eq!(sink("grep-match").messages(), vec!["b"]);
    assert_eq!(sink("grep-match-error").len(), 0);

    emit(&conf("on_regexp_give_up no_match", "grep-nomatch"), "grep-nomatch", "app.x", records());
    assert_eq!(sink("grep-nomatch").messages(), vec![aaa.clone(), "b".to_string()]);
}

#[test]
fn grep_keeps_a_long_record_whose_match_is_far_in() {
    let conf = format!(
        "<filter app.**>\n @type grep\n <regexp>\n  key message\n  pattern {RRN}\n </regexp>\n</filter>\n<match app.**>\n @type capture\n run RUN\n</match>\n{}",
        error_label("grep-long")
    );
    emit(&conf, "grep-long", "app.x", vec![record! {"message" => long_rrn()}, record! {"message" => "x"}]);
    assert_eq!(sink("grep-long").len(), 1);
    assert_eq!(sink("grep-long-error").len(), 0);
}

#[test]
fn regexp_parser_parses_long_lines_and_reports_give_ups() {
    let conf = format!(
        r#"
<filter app.**>
  @type parser
  key_name message
  <parse>
    @type regexp
    expression /(?<!\d)(?<rrn>\d{{6}}-[1-4]\d{{6}})(?!\d)|(?=(?<b>b|bb)+\k<b>c)b/
  </parse>
</filter>
<match app.**>
  @type capture
  run RUN
</match>
{}"#,
        error_label("parser")
    );
    emit(&conf, "parser", "app.x", vec![record! {"message" => long_rrn()}, record! {"message" => "b".repeat(40)}]);
    let got = sink("parser").records();
    assert_eq!(got.len(), 1, "{:?}", got.iter().map(|(_, r)| r.keys().collect::<Vec<_>>()).collect::<Vec<_>>());
    assert_eq!(got[0].1.get("rrn").and_then(|v| v.as_str()), Some("900101-1234567"));
    // The line the regexp could not decide is a reported parse failure.
    assert_eq!(sink("parser-error").len(), 1);
}
