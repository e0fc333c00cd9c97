//! One test per construct family. Expected values are what Ruby itself prints for the same code.
use super::*;
use crate::event::{EventTime, Map, Value};

/// The names record_transformer provides, bound to a fixed event.
struct Rec {
    record: Map,
    tag: &'static str,
    time: EventTime,
}

impl Context for Rec {
    fn get(&self, name: &str) -> Option<RValue> {
        let parts: Vec<RValue> = self.tag.split('.').map(RValue::str).collect();
        Some(match name {
            "record" => RValue::from_map(&self.record),
            "tag" => RValue::str(self.tag),
            "tag_parts" => RValue::Array(parts),
            "time" => RValue::Time(RTime { t: self.time, utc: false }),
            "hostname" => RValue::str("host1"),
            _ => return None,
        })
    }
    fn record_key(&self, key: &str) -> Option<Option<RValue>> {
        Some(self.record.get(key).map(RValue::from_value))
    }
}

const NAMES: &[&str] = &["record", "tag", "tag_parts", "time", "hostname"];

fn rec() -> Rec {
    let mut record = Map::new();
    record.insert("msg", Value::from("  Hello World  "));
    record.insert("code", Value::Int(404));
    record.insert("ratio", Value::Float(0.5));
    record.insert("path", Value::from("/var/log/app/web.log"));
    let mut k8s = Map::new();
    k8s.insert("namespace", Value::from("prod"));
    k8s.insert("labels", Value::Array(vec![Value::from("a"), Value::from("b")]));
    record.insert("kubernetes", Value::Map(k8s));
    record.insert("nothing", Value::Null);
    Rec { record, tag: "app.web.access", time: EventTime::new(1_700_000_000, 123_456_789) }
}

fn ev(code: &str) -> RValue {
    let p = Program::parse(code, NAMES).unwrap_or_else(|e| panic!("{code}: {e}"));
    p.eval(&rec()).unwrap_or_else(|e| panic!("{code}: {e}"))
}

fn s(code: &str) -> String {
    match ev(code) {
        RValue::Str(s) => s,
        other => panic!("{code}: not a string: {other:?}"),
    }
}

fn run_err(code: &str) -> String {
    let p = Program::parse(code, NAMES).unwrap_or_else(|e| panic!("{code}: {e}"));
    p.eval(&rec()).expect_err(code).0
}

fn syntax_err(code: &str) -> String {
    Program::parse(code, NAMES).expect_err(code).to_string()
}

#[test]
fn literals() {
    assert_eq!(ev("nil"), RValue::Nil);
    assert_eq!(ev("true"), RValue::Bool(true));
    assert_eq!(ev("false"), RValue::Bool(false));
    assert_eq!(ev("42"), RValue::Int(42));
    assert_eq!(ev("-7"), RValue::Int(-7));
    assert_eq!(ev("1_000"), RValue::Int(1000));
    assert_eq!(ev("2.5"), RValue::Float(2.5));
    assert_eq!(ev(":info"), RValue::Sym("info".into()));
    assert_eq!(s("'a\\'b\\n'"), "a'b\\n");
    assert_eq!(s("\"a\\tb\""), "a\tb");
    assert_eq!(s("\"#{tag}-#{1 + 1}-#{nil}-#{:s}-#{1.0}\""), "app.web.access-2--s-1.0");
    assert_eq!(s("\"x#{\"in#{tag_parts[0]}\"}\""), "xinapp");
    assert_eq!(ev("[1, 'a', nil]"), RValue::Array(vec![RValue::Int(1), RValue::str("a"), RValue::Nil]));
    assert_eq!(s("{'a' => 1, b: 2}.to_s"), "{\"a\"=>1, :b=>2}");
}

#[test]
fn env_lookups() {
    std::env::set_var("SLUICE_RUBY_T_SET", "v1");
    std::env::remove_var("SLUICE_RUBY_T_UNSET");
    assert_eq!(s("ENV['SLUICE_RUBY_T_SET']"), "v1");
    assert_eq!(ev("ENV[\"SLUICE_RUBY_T_UNSET\"]"), RValue::Nil);
    assert_eq!(s("ENV.fetch('SLUICE_RUBY_T_UNSET', 'd')"), "d");
    assert_eq!(s("ENV.fetch('SLUICE_RUBY_T_SET', 'd')"), "v1");
    assert_eq!(s("ENV.fetch('SLUICE_RUBY_T_UNSET') { 'blk' }"), "blk");
    assert_eq!(ev("ENV.fetch('SLUICE_RUBY_T_UNSET', nil)"), RValue::Nil);
    assert_eq!(ev("ENV.key?('SLUICE_RUBY_T_SET')"), RValue::Bool(true));
    let e = run_err("ENV.fetch('SLUICE_RUBY_T_UNSET')");
    assert!(e.contains("key not found") && e.contains("SLUICE_RUBY_T_UNSET"), "{e}");
}

#[test]
fn logic_and_control_flow() {
    assert_eq!(s("nil || 'b'"), "b");
    assert_eq!(ev("false || nil"), RValue::Nil);
    assert_eq!(ev("1 && 2"), RValue::Int(2));
    assert_eq!(ev("nil && 2"), RValue::Nil);
    assert_eq!(ev("!nil"), RValue::Bool(true));
    assert_eq!(ev("!0"), RValue::Bool(false), "0 is true in Ruby");
    assert_eq!(ev("not true"), RValue::Bool(false));
    assert_eq!(s("record['code'] > 400 ? 'err' : 'ok'"), "err");
    assert_eq!(s("tag == 'x' ? 'a' : tag_parts.size == 3 ? 'three' : 'other'"), "three");
    assert_eq!(s("if record['code'] == 404 then 'nf' else 'other' end"), "nf");
    assert_eq!(s("if false\n 'a'\nelsif 1 < 2\n 'b'\nelse\n 'c'\nend"), "b");
    assert_eq!(ev("if false then 1 end"), RValue::Nil);
    assert_eq!(s("unless nil then 'u' end"), "u");
    assert_eq!(s("'m' if true"), "m");
    assert_eq!(s("x = 'loc'; x + '!'"), "loc!");
}

#[test]
fn comparisons() {
    assert_eq!(ev("1 == 1.0"), RValue::Bool(true));
    assert_eq!(ev("'a' == :a"), RValue::Bool(false));
    assert_eq!(ev("'1' != 1"), RValue::Bool(true));
    assert_eq!(ev("'abc' < 'abd'"), RValue::Bool(true));
    assert_eq!(ev("2 > 1.5"), RValue::Bool(true));
    assert_eq!(ev("3 >= 3"), RValue::Bool(true));
    assert_eq!(ev("[1, [2]] == [1.0, [2]]"), RValue::Bool(true));
    assert_eq!(ev("{'a' => 1, 'b' => 2} == {'b' => 2, 'a' => 1}"), RValue::Bool(true));
    let e = run_err("'a' < 1");
    assert!(e.contains("comparison of String with 1 failed"), "{e}");
}

#[test]
fn regexp_matching_and_named_captures() {
    assert_eq!(ev("record['path'] =~ /app/"), RValue::Int(9));
    assert_eq!(ev("record['path'] =~ /nope/"), RValue::Nil);
    assert_eq!(ev("record['path'] !~ /nope/"), RValue::Bool(true));
    assert_eq!(ev("'ABC' =~ /b/i"), RValue::Int(1));
    assert_eq!(ev("nil =~ /x/"), RValue::Nil);
    // A regexp literal on the left makes its named groups locals (nil when there is no match).
    assert_eq!(s("/\\/log\\/(?<dir>[^\\/]+)\\/(?<file>[^.]+)/ =~ record['path']; \"#{dir}:#{file}\""), "app:web");
    assert_eq!(ev("/(?<zz>q)/ =~ 'x'; zz"), RValue::Nil);
    assert_eq!(s("tag =~ /^app\\./ ? 'app' : 'other'"), "app");
}

#[test]
fn arithmetic() {
    assert_eq!(ev("1 + 2"), RValue::Int(3));
    assert_eq!(ev("1 + 0.5"), RValue::Float(1.5));
    assert_eq!(ev("10 - 2.5"), RValue::Float(7.5));
    assert_eq!(s("'a' + 'b'"), "ab");
    assert_eq!(ev("[1] + [2]"), RValue::Array(vec![RValue::Int(1), RValue::Int(2)]));
    assert!(run_err("'a' + 1").contains("no implicit conversion of Integer into String"));
    assert!(run_err("1 + 'a'").contains("String can't be coerced into Integer"));
    assert!(run_err("9223372036854775807 + 1").contains("overflow"));
}

#[test]
fn file_socket_hash_constants() {
    assert_eq!(s("File.join('/var/log', 'app', 'x.log')"), "/var/log/app/x.log");
    assert_eq!(s("File.join('a/', '/b')"), "a/b");
    assert_eq!(s("File.join(['a', 'b'], 'c')"), "a/b/c");
    assert_eq!(s("File.basename(record['path'])"), "web.log");
    assert_eq!(s("File.dirname(record['path'])"), "/var/log/app");
    assert_eq!(s("Socket.gethostname"), crate::util::hostname());
    assert_eq!(ev("Hash.new"), RValue::Hash(vec![]));
    assert_eq!(ev("Hash.new.empty?"), RValue::Bool(true));
}

#[test]
fn conversions() {
    assert_eq!(ev("'12abc'.to_i"), RValue::Int(12));
    assert_eq!(ev("'abc'.to_i"), RValue::Int(0));
    assert_eq!(ev("' 1.5e1x'.to_f"), RValue::Float(15.0));
    assert_eq!(ev("3.99.to_i"), RValue::Int(3));
    assert_eq!(ev("-3.99.to_i"), RValue::Int(-3));
    assert_eq!(ev("nil.to_i"), RValue::Int(0));
    assert_eq!(ev("nil.to_s"), RValue::str(""));
    assert_eq!(ev("1e20.to_s"), RValue::str("1.0e+20"));
    assert_eq!(ev("[1, nil, 'a'].to_s"), RValue::str("[1, nil, \"a\"]"));
    assert_eq!(ev("'warn'.to_sym"), RValue::Sym("warn".into()));
    assert_eq!(ev("nil.nil?"), RValue::Bool(true));
    assert_eq!(ev("record['missing'].nil?"), RValue::Bool(true));
}

#[test]
fn string_methods() {
    assert_eq!(ev("'héllo'.length"), RValue::Int(5));
    assert_eq!(ev("'abc'.size"), RValue::Int(3));
    assert_eq!(s("record['msg'].strip.downcase"), "hello world");
    assert_eq!(s("record['msg'].upcase.strip"), "HELLO WORLD");
    assert_eq!(ev("' a  b '.split"), RValue::Array(vec![RValue::str("a"), RValue::str("b")]));
    assert_eq!(ev("'a,b,,'.split(',')"), RValue::Array(vec![RValue::str("a"), RValue::str("b")]));
    assert_eq!(ev("'a1b22c'.split(/\\d+/)"), RValue::Array(vec![RValue::str("a"), RValue::str("b"), RValue::str("c")]));
    assert_eq!(s("tag.split('.').last"), "access");
    assert_eq!(
        ev("'a.b.c'.rpartition('.')"),
        RValue::Array(vec![RValue::str("a.b"), RValue::str("."), RValue::str("c")])
    );
    assert_eq!(
        ev("'a.b.c'.partition('.')"),
        RValue::Array(vec![RValue::str("a"), RValue::str("."), RValue::str("b.c")])
    );
    assert_eq!(ev("'abc'.partition('x')"), RValue::Array(vec![RValue::str("abc"), RValue::str(""), RValue::str("")]));
    assert_eq!(ev("'abc'.rpartition('x')"), RValue::Array(vec![RValue::str(""), RValue::str(""), RValue::str("abc")]));
    assert_eq!(s("'a-b-c'.gsub('-', '_')"), "a_b_c");
    assert_eq!(s("'a-b-c'.sub('-', '_')"), "a_b-c");
    assert_eq!(s("'2024-01-02'.gsub(/(\\d+)-(\\d+)-(\\d+)/, '\\3/\\2/\\1')"), "02/01/2024");
    assert_eq!(s("'john@x.com'.sub(/(?<u>\\w+)@/, '\\k<u> at ')"), "john at x.com");
    assert_eq!(s("'aaa'.gsub(/a/, {'a' => 'b'})"), "bbb");
    assert_eq!(s("'abc'.gsub(//, '-')"), "-a-b-c-");
    assert_eq!(ev("'hello'.include?('ell')"), RValue::Bool(true));
    assert_eq!(ev("tag.start_with?('x', 'app')"), RValue::Bool(true));
    assert_eq!(ev("tag.end_with?('.access')"), RValue::Bool(true));
    assert_eq!(ev("''.empty?"), RValue::Bool(true));
    assert_eq!(s("'hello'[1]"), "e");
    assert_eq!(s("'hello'[-1]"), "o");
    assert_eq!(s("'hello'[1..-2]"), "ell");
    assert_eq!(s("'hello'[1...3]"), "el");
    assert_eq!(s("'hello'[1, 3]"), "ell");
    assert_eq!(ev("'hello'[10]"), RValue::Nil);
    assert_eq!(s("'hello'[5..]".replace("..]", "..-1]").as_str()), "");
    assert_eq!(s("'hello'['ll']"), "ll");
    assert_eq!(s("'hello'[/l+/]"), "ll");
}

#[test]
fn array_and_hash_methods() {
    assert_eq!(s("tag_parts.first"), "app");
    assert_eq!(s("tag_parts[-1]"), "access");
    assert_eq!(
        ev("tag_parts[1..]".replace("..]", "..-1]").as_str()),
        RValue::Array(vec![RValue::str("web"), RValue::str("access")])
    );
    assert_eq!(ev("tag_parts.first(2)"), RValue::Array(vec![RValue::str("app"), RValue::str("web")]));
    assert_eq!(s("tag_parts.join('-')"), "app-web-access");
    assert_eq!(s("[1, [2, nil], :c].join(',')"), "1,2,,c");
    assert_eq!(ev("tag_parts.include?('web')"), RValue::Bool(true));
    assert_eq!(ev("tag_parts.fetch(9, 'd')"), RValue::str("d"));
    assert_eq!(s("record['kubernetes']['namespace']"), "prod");
    assert_eq!(s("record.dig('kubernetes', 'labels', 1)"), "b");
    assert_eq!(ev("record.dig('nope', 'x')"), RValue::Nil);
    assert_eq!(s("record.fetch('nope', 'dflt')"), "dflt");
    assert_eq!(s("record.fetch('nope') { 'blk' }"), "blk");
    assert_eq!(ev("record['kubernetes'].keys"), RValue::Array(vec![RValue::str("namespace"), RValue::str("labels")]));
    assert_eq!(ev("{'a' => 1}.values"), RValue::Array(vec![RValue::Int(1)]));
    assert_eq!(s("{'a' => 1}.merge({'a' => 2, 'b' => 3}).to_s"), "{\"a\"=>2, \"b\"=>3}");
    assert_eq!(ev("record.key?('code')"), RValue::Bool(true));
    assert_eq!(ev("record['nothing'] || 'fallback'"), RValue::str("fallback"));
    assert!(run_err("record.fetch('nope')").contains("key not found: \"nope\""));
}

#[test]
fn time_methods() {
    assert_eq!(ev("time.to_i"), RValue::Int(1_700_000_000));
    assert_eq!(ev("time.usec"), RValue::Int(123_456));
    assert_eq!(ev("time.nsec"), RValue::Int(123_456_789));
    let RValue::Float(f) = ev("time.to_f") else { panic!("to_f") };
    assert!((f - 1_700_000_000.123_456_8).abs() < 1e-5, "{f}");
    // 1700000000 is 2023-11-14 22:13:20 UTC.
    assert_eq!(s("time.utc.strftime('%Y-%m-%dT%H:%M:%S.%3N')"), "2023-11-14T22:13:20.123");
    assert_eq!(s("time.utc.iso8601"), "2023-11-14T22:13:20Z");
    assert_eq!(s("time.utc.iso8601(3)"), "2023-11-14T22:13:20.123Z");
    assert_eq!(s("time.utc.to_s"), "2023-11-14 22:13:20 UTC");
    assert_eq!(ev("time.localtime.to_i"), RValue::Int(1_700_000_000));
}

#[test]
fn runtime_errors_are_ruby_errors() {
    let e = run_err("record['missing'].downcase");
    assert!(e.contains("undefined method 'downcase' for nil"), "{e}");
    let e = run_err("record['code'].upcase");
    assert!(e.contains("undefined method 'upcase' for an instance of Integer"), "{e}");
    let e = run_err("nil[0]");
    assert!(e.contains("undefined method '[]' for nil"), "{e}");
}

#[test]
fn constructs_outside_the_subset_are_named() {
    for (code, what) in [
        ("File.read('/etc/passwd')", "File.read"),
        ("`id`", "backticks"),
        ("system('id')", "'system'"),
        ("Kernel.exit", "constant Kernel"),
        ("record['a'].map { |x| x }", "method 'map'"),
        ("record.fetch('a') { |k| k }", "block parameters"),
        ("1 * 2", "operator '*'"),
        ("foo", "name 'foo'"),
        ("@x", "instance variables"),
        ("$stdout", "global variables"),
        ("record['a'].include? 'x'", "without parentheses"),
        ("%w[a b]", "%-literals"),
        ("while true do end", "'while'"),
        ("tag = 'x'", "assigning to 'tag'"),
    ] {
        let e = syntax_err(code);
        assert!(e.contains(what) && e.contains("not supported"), "{code}: {e}");
    }
    assert!(syntax_err("if true then 1").contains("incomplete"));
    assert!(syntax_err("(1").contains("incomplete"));
    let deep = format!("{}1{}", "(".repeat(200), ")".repeat(200));
    assert!(syntax_err(&deep).contains("nested deeper"));
}

#[test]
fn config_code_specials_and_errors() {
    let eval = |code: &str| eval_config_code(code).0;
    assert_eq!(eval("use_nil"), Ok(RValue::UseNil));
    assert_eq!(eval("ENV['SLUICE_RUBY_T_UNSET2'] || use_default"), Ok(RValue::UseDefault));
    assert_eq!(eval("\"#{use_nil}/x\""), Ok(RValue::UseNil));
    assert_eq!(eval("worker_id"), Ok(RValue::str("0")));
    assert_eq!(eval("hostname"), Ok(RValue::Str(crate::util::hostname())));
    let e = eval("record['x']").unwrap_err();
    assert!(e.contains("'#{record['x']}'") && e.contains("name 'record'"), "{e}");
    let e = eval("ENV.fetch('SLUICE_RUBY_T_UNSET3')").unwrap_err();
    assert!(e.contains("failed") && e.contains("SLUICE_RUBY_T_UNSET3"), "{e}");
}

#[test]
fn config_code_names_unset_environment_variables() {
    let (v, unset) = eval_config_code("ENV['SLUICE_RUBY_T_UNSET4']");
    assert_eq!(v, Ok(RValue::Nil));
    assert_eq!(unset, vec!["SLUICE_RUBY_T_UNSET4".to_string()]);
    // A default given with fetch is not a missing variable.
    let (v, unset) = eval_config_code("ENV.fetch('SLUICE_RUBY_T_UNSET5', 'd')");
    assert_eq!(v, Ok(RValue::str("d")));
    assert!(unset.is_empty());
}

#[test]
fn interpolated_templates() {
    let p = Program::parse_interpolated("#{tag_parts[0]}/#{record['code']}/x", NAMES).unwrap();
    assert_eq!(p.eval(&rec()).unwrap(), RValue::str("app/404/x"));
}

/// The examples of docs/plugins/record_transformer.md.
#[test]
fn documented_record_transformer_examples() {
    let mut r = rec();
    r.record.insert("level", Value::from("WARN"));
    r.record.insert("status", Value::from("503"));
    r.record.insert("email", Value::from("ann@example.com"));
    let run = |code: &str| Program::parse(code, NAMES).unwrap().eval(&r).unwrap();
    assert_eq!(run(r#"record["level"].to_s.downcase"#), RValue::str("warn"));
    assert_eq!(run(r#"record["status"].to_i >= 500"#), RValue::Bool(true));
    assert_eq!(run(r#"record.dig("kubernetes", "namespace") || "default""#), RValue::str("prod"));
    assert_eq!(run(r#"/(?<u>\w+)@/ =~ record["email"].to_s ? u : "anonymous""#), RValue::str("ann"));
    assert_eq!(run(r#"/(?<u>\w+)@/ =~ record["nope"].to_s ? u : "anonymous""#), RValue::str("anonymous"));
    let p = Program::parse_interpolated(r#"#{tag_parts[1]}-#{record["env"] || "dev"}"#, NAMES).unwrap();
    assert_eq!(p.eval(&r).unwrap(), RValue::str("web-dev"));
}
