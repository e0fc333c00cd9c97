//! Ruby `strftime`/`strptime` format strings, compiled once into items that formatting and parsing share.

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Flags {
    pub(super) no_pad: bool,
    pub(super) space: bool,
    pub(super) zero: bool,
    pub(super) upper: bool,
    pub(super) swap: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Item {
    Lit(String),
    Conv { c: char, flags: Flags, width: Option<usize>, colons: u8 },
}

impl Item {
    pub(super) fn is_subsec(&self) -> bool {
        matches!(self, Item::Conv { c: 'L' | 'N' | 'Q', .. })
    }
}

fn composite(c: char) -> Option<&'static str> {
    Some(match c {
        'c' => "%a %b %e %H:%M:%S %Y",
        'D' | 'x' => "%m/%d/%y",
        'F' => "%Y-%m-%d",
        'T' | 'X' => "%H:%M:%S",
        'R' => "%H:%M",
        'r' => "%I:%M:%S %p",
        'v' => "%e-%^b-%4Y",
        '+' => "%a %b %e %H:%M:%S %Z %Y",
        _ => return None,
    })
}

const KNOWN: &str = "YCymBbhdejHkIlPpMSLNzZAauwsQUWGgVnt%";

pub(super) fn compile(fmt: &str) -> Vec<Item> {
    let mut items = Vec::new();
    let mut lit = String::new();
    let chars: Vec<char> = fmt.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let ch = chars[i];
        if ch != '%' {
            lit.push(ch);
            i += 1;
            continue;
        }
        // %[flags][width][:]conv
        let start = i;
        i += 1;
        let mut flags = Flags::default();
        while let Some(&f) = chars.get(i) {
            match f {
                '-' => flags.no_pad = true,
                '_' => flags.space = true,
                '0' => flags.zero = true,
                '^' => flags.upper = true,
                '#' => flags.swap = true,
                _ => break,
            }
            i += 1;
        }
        let mut width: Option<usize> = None;
        while let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
            width = Some(width.unwrap_or(0).saturating_mul(10).saturating_add(d as usize).min(1024));
            i += 1;
        }
        let mut colons = 0u8;
        while chars.get(i) == Some(&':') && colons < 3 {
            colons += 1;
            i += 1;
        }
        let Some(&c) = chars.get(i) else {
            lit.extend(&chars[start..]);
            break;
        };
        i += 1;
        if (colons > 0 && c != 'z') || !(KNOWN.contains(c) || composite(c).is_some()) {
            // Unknown conversions are copied as they are, as Ruby does.
            lit.extend(&chars[start..i]);
            continue;
        }
        match c {
            '%' => lit.push('%'),
            'n' => lit.push('\n'),
            't' => lit.push('\t'),
            _ => {
                if !lit.is_empty() {
                    items.push(Item::Lit(std::mem::take(&mut lit)));
                }
                if let Some(exp) = composite(c) {
                    for mut it in compile(exp) {
                        if let Item::Conv { flags: f, .. } = &mut it {
                            f.upper |= flags.upper;
                        }
                        items.push(it);
                    }
                } else {
                    items.push(Item::Conv { c, flags, width, colons });
                }
            }
        }
    }
    if !lit.is_empty() {
        items.push(Item::Lit(lit));
    }
    items
}
