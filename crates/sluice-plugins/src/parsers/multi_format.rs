//! `multi_format` (fluent-plugin-multi-format-parser): `<pattern>` sections tried top to bottom; the
//! first that parses the line wins.
use sluice_core::config::{ConfigError, Element};
use sluice_core::plugin::{BuildCtx, ParseError, Parsed, Parser};

pub struct MultiFormatParser {
    parsers: Vec<Box<dyn Parser>>,
    /// The pattern that matched last, whose extra records `take_extra` hands on.
    matched: usize,
}

pub fn build(e: &Element, ctx: &BuildCtx) -> Result<Box<dyn Parser>, ConfigError> {
    let mut parsers = Vec::new();
    for p in e.sections("pattern") {
        // v0.12 style `format json` or v1 style `@type json`.
        let parser = match p.get("format") {
            Some(f) => {
                let mut section = p.clone();
                section.set("@type", f, p.loc_of("format").clone());
                section.attrs.retain(|a| a.key != "format");
                let parser = ctx.registry.build_parser(&section, None, ctx)?;
                // The clone's parameters were read, not the original's: carry the marks back.
                for a in section.attrs.iter().filter(|a| a.used.get()) {
                    if let Some(orig) = p.attrs.iter().find(|o| o.key == a.key) {
                        orig.used.set(true);
                    }
                }
                p.children.iter().for_each(Element::mark_all_used);
                parser
            }
            None => ctx.registry.build_parser(p, None, ctx)?,
        };
        if parser.is_joining() {
            return Err(p.error("joining parsers (multiline, cri, docker) cannot be a multi_format pattern"));
        }
        parsers.push(parser);
    }
    if parsers.is_empty() {
        return Err(e
            .error("multi_format needs at least one <pattern> section")
            .with_hint("add <pattern> format json </pattern>"));
    }
    Ok(Box::new(MultiFormatParser { parsers, matched: 0 }))
}

impl Parser for MultiFormatParser {
    fn parse(&mut self, line: &str) -> Result<Option<Parsed>, ParseError> {
        for (i, p) in self.parsers.iter_mut().enumerate() {
            if let Ok(Some(parsed)) = p.parse(line) {
                self.matched = i;
                return Ok(Some(parsed));
            }
        }
        Err(ParseError::NotMatched("no <pattern> matched".into()))
    }

    fn take_extra(&mut self) -> Option<Result<Parsed, ParseError>> {
        self.parsers.get_mut(self.matched)?.take_extra()
    }

    fn new_instance(&self) -> Box<dyn Parser> {
        Box::new(MultiFormatParser { parsers: self.parsers.iter().map(|p| p.new_instance()).collect(), matched: 0 })
    }
}
