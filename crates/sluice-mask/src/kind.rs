//! The kinds of personal data the filter knows: the built-in detectors, the kind for sensitive field
//! names that belong to no detector, and user rules (numbered after the built-ins).

/// A kind's index: built-ins first (in [`BUILTIN`] order), then `SENSITIVE_KEY`, then user rules.
pub type KindId = u16;

/// A built-in detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detector {
    Email,
    Phone,
    KrRrn,
    KrFrn,
    Card,
    Ipv4,
    Ipv6,
    KrPassport,
    KrDriverLicense,
    AwsAccessKey,
    AwsSecretKey,
    Jwt,
    BearerToken,
    Password,
}

/// Every built-in detector, in the order of their ids and of the documentation.
pub const BUILTIN: [Detector; 14] = [
    Detector::Email,
    Detector::Phone,
    Detector::KrRrn,
    Detector::KrFrn,
    Detector::Card,
    Detector::Ipv4,
    Detector::Ipv6,
    Detector::KrPassport,
    Detector::KrDriverLicense,
    Detector::AwsAccessKey,
    Detector::AwsSecretKey,
    Detector::Jwt,
    Detector::BearerToken,
    Detector::Password,
];

/// The kind counted for a sensitive field name that maps to no detector (`token`, `secret`, `cvv`, ...).
pub const SENSITIVE_KEY: KindId = BUILTIN.len() as KindId;
pub const SENSITIVE_KEY_NAME: &str = "sensitive_key";
/// User rules get ids from here on.
pub const FIRST_RULE: KindId = SENSITIVE_KEY + 1;

impl Detector {
    pub const fn id(self) -> KindId {
        self as KindId
    }

    pub const fn name(self) -> &'static str {
        match self {
            Detector::Email => "email",
            Detector::Phone => "phone",
            Detector::KrRrn => "kr_rrn",
            Detector::KrFrn => "kr_frn",
            Detector::Card => "card",
            Detector::Ipv4 => "ipv4",
            Detector::Ipv6 => "ipv6",
            Detector::KrPassport => "kr_passport",
            Detector::KrDriverLicense => "kr_driver_license",
            Detector::AwsAccessKey => "aws_access_key",
            Detector::AwsSecretKey => "aws_secret_key",
            Detector::Jwt => "jwt",
            Detector::BearerToken => "bearer_token",
            Detector::Password => "password",
        }
    }

    pub fn from_name(name: &str) -> Option<Detector> {
        BUILTIN.iter().copied().find(|d| d.name() == name)
    }

    /// On unless `detectors` says otherwise: everything but the IP addresses, which most teams keep.
    pub const fn default_on(self) -> bool {
        !matches!(self, Detector::Ipv4 | Detector::Ipv6)
    }

    /// Secrets are never partially shown: `partial` hides them whole (a fixed `********`).
    pub const fn is_secret(self) -> bool {
        matches!(self, Detector::AwsSecretKey | Detector::Jwt | Detector::BearerToken | Detector::Password)
    }
}

/// A set of built-in detectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DetectorSet(u16);

impl DetectorSet {
    pub const fn empty() -> Self {
        DetectorSet(0)
    }

    pub fn all() -> Self {
        BUILTIN.iter().fold(Self::empty(), |s, d| s.with(*d))
    }

    pub fn defaults() -> Self {
        BUILTIN.iter().filter(|d| d.default_on()).fold(Self::empty(), |s, d| s.with(*d))
    }

    pub const fn with(self, d: Detector) -> Self {
        DetectorSet(self.0 | (1 << d as u16))
    }

    pub const fn without(self, d: Detector) -> Self {
        DetectorSet(self.0 & !(1 << d as u16))
    }

    pub const fn has(self, d: Detector) -> bool {
        self.0 & (1 << d as u16) != 0
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Detector> {
        BUILTIN.into_iter().filter(move |d| self.has(*d))
    }
}

/// Field names that mean personal data whatever their content, in normalised form (lowercase letters and
/// digits only, so `card_number`, `cardNumber` and `card-number` are one name), with the kind each counts as.
pub const DEFAULT_SENSITIVE_KEYS: &[(&str, Option<Detector>)] = &[
    ("password", Some(Detector::Password)),
    ("passwd", Some(Detector::Password)),
    ("pwd", Some(Detector::Password)),
    ("passphrase", Some(Detector::Password)),
    ("rrn", Some(Detector::KrRrn)),
    ("jumin", Some(Detector::KrRrn)),
    ("juminno", Some(Detector::KrRrn)),
    ("ssn", Some(Detector::KrRrn)),
    ("residentregistrationnumber", Some(Detector::KrRrn)),
    ("frn", Some(Detector::KrFrn)),
    ("foreignerregistrationnumber", Some(Detector::KrFrn)),
    ("alienregistrationnumber", Some(Detector::KrFrn)),
    ("cardnumber", Some(Detector::Card)),
    ("cardno", Some(Detector::Card)),
    ("creditcard", Some(Detector::Card)),
    ("creditcardnumber", Some(Detector::Card)),
    ("ccnumber", Some(Detector::Card)),
    ("pan", Some(Detector::Card)),
    ("phone", Some(Detector::Phone)),
    ("phonenumber", Some(Detector::Phone)),
    ("phoneno", Some(Detector::Phone)),
    ("mobile", Some(Detector::Phone)),
    ("mobilephone", Some(Detector::Phone)),
    ("cellphone", Some(Detector::Phone)),
    ("tel", Some(Detector::Phone)),
    ("telephone", Some(Detector::Phone)),
    ("email", Some(Detector::Email)),
    ("emailaddress", Some(Detector::Email)),
    ("passport", Some(Detector::KrPassport)),
    ("passportno", Some(Detector::KrPassport)),
    ("passportnumber", Some(Detector::KrPassport)),
    ("driverlicense", Some(Detector::KrDriverLicense)),
    ("driverslicense", Some(Detector::KrDriverLicense)),
    ("driverlicensenumber", Some(Detector::KrDriverLicense)),
    ("secret", None),
    ("clientsecret", None),
    ("secretkey", None),
    ("secretaccesskey", Some(Detector::AwsSecretKey)),
    ("awssecretaccesskey", Some(Detector::AwsSecretKey)),
    ("apikey", None),
    ("token", None),
    ("accesstoken", None),
    ("refreshtoken", None),
    ("idtoken", None),
    ("authorization", None),
    ("privatekey", None),
    ("cvv", None),
    ("cvc", None),
    ("accountnumber", None),
    ("bankaccount", None),
    ("주민등록번호", Some(Detector::KrRrn)),
    ("주민번호", Some(Detector::KrRrn)),
    ("외국인등록번호", Some(Detector::KrFrn)),
    ("카드번호", Some(Detector::Card)),
    ("전화번호", Some(Detector::Phone)),
    ("휴대폰번호", Some(Detector::Phone)),
    ("휴대전화", Some(Detector::Phone)),
    ("이메일", Some(Detector::Email)),
    ("여권번호", Some(Detector::KrPassport)),
    ("운전면허번호", Some(Detector::KrDriverLicense)),
    ("비밀번호", Some(Detector::Password)),
    ("계좌번호", None),
];

/// Longest normalised field name the lookup considers (bytes).
pub const KEY_BUF: usize = 48;

/// Normalise a field name for the sensitive-key lookup: ASCII letters lowercased, digits kept, every other
/// character dropped. Returns `None` for names too long to be one of ours (no allocation on the hot path).
pub fn normalize_key<'b>(key: &str, buf: &'b mut [u8; KEY_BUF]) -> Option<&'b [u8]> {
    let mut n = 0;
    for &b in key.as_bytes() {
        if b.is_ascii_alphanumeric() {
            if n == buf.len() {
                return None;
            }
            buf[n] = b.to_ascii_lowercase();
            n += 1;
        } else if !b.is_ascii() {
            // Non-ASCII names (Korean field names such as 주민번호) are compared as written.
            if n == buf.len() {
                return None;
            }
            buf[n] = b;
            n += 1;
        }
    }
    Some(&buf[..n])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_ids_are_dense() {
        for (i, d) in BUILTIN.iter().enumerate() {
            assert_eq!(d.id() as usize, i);
            assert_eq!(Detector::from_name(d.name()), Some(*d));
        }
        assert_eq!(Detector::from_name("ssn"), None);
    }

    #[test]
    fn default_set_leaves_ip_out() {
        let d = DetectorSet::defaults();
        assert!(!d.has(Detector::Ipv4) && !d.has(Detector::Ipv6));
        assert_eq!(d.iter().count(), 12);
        assert_eq!(DetectorSet::all().iter().count(), 14);
    }

    #[test]
    fn key_normalisation() {
        let mut buf = [0u8; KEY_BUF];
        assert_eq!(normalize_key("card_number", &mut buf), Some(&b"cardnumber"[..]));
        assert_eq!(normalize_key("cardNumber", &mut buf), Some(&b"cardnumber"[..]));
        assert_eq!(normalize_key("Card-Number", &mut buf), Some(&b"cardnumber"[..]));
        assert_eq!(normalize_key(&"x".repeat(60), &mut buf), None);
    }
}
