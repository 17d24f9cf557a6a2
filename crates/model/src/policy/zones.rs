//! A contact's time zone from its E.164 number. The `phonenumber` crate has no time-zone
//! mapper (libphonenumber's PhoneNumberToTimeZonesMapper is not ported), so this is a compact
//! table: one zone per single-zone country code, and for the North American plan the
//! area code (US and Canada). Anything else — a country spanning zones without a table,
//! a toll-free or unassigned area code, an area code split between zones — is ambiguous
//! and takes the campaign's default zone (counted in the import summary).

/// Calling code → zone, for countries with one zone (longest codes first where they nest).
const COUNTRIES: &[(&str, &str)] = &[
    ("44", "Europe/London"),
    ("353", "Europe/Dublin"),
    ("33", "Europe/Paris"),
    ("49", "Europe/Berlin"),
    ("34", "Europe/Madrid"),
    ("39", "Europe/Rome"),
    ("31", "Europe/Amsterdam"),
    ("32", "Europe/Brussels"),
    ("41", "Europe/Zurich"),
    ("43", "Europe/Vienna"),
    ("46", "Europe/Stockholm"),
    ("47", "Europe/Oslo"),
    ("45", "Europe/Copenhagen"),
    ("358", "Europe/Helsinki"),
    ("48", "Europe/Warsaw"),
    ("351", "Europe/Lisbon"),
    ("30", "Europe/Athens"),
    ("420", "Europe/Prague"),
    ("36", "Europe/Budapest"),
    ("40", "Europe/Bucharest"),
    ("90", "Europe/Istanbul"),
    ("972", "Asia/Jerusalem"),
    ("971", "Asia/Dubai"),
    ("966", "Asia/Riyadh"),
    ("91", "Asia/Kolkata"),
    ("81", "Asia/Tokyo"),
    ("82", "Asia/Seoul"),
    ("86", "Asia/Shanghai"),
    ("852", "Asia/Hong_Kong"),
    ("65", "Asia/Singapore"),
    ("63", "Asia/Manila"),
    ("66", "Asia/Bangkok"),
    ("64", "Pacific/Auckland"),
    ("27", "Africa/Johannesburg"),
    ("234", "Africa/Lagos"),
    ("254", "Africa/Nairobi"),
    ("20", "Africa/Cairo"),
    ("54", "America/Argentina/Buenos_Aires"),
    ("57", "America/Bogota"),
    ("51", "America/Lima"),
];

/// North American area codes by zone (US and Canada). Codes split between zones are left out
/// (ambiguous), as are toll-free and unassigned ones.
const NANP: &[(&str, &str)] = &[
    (
        "America/Los_Angeles",
        "209 213 279 310 323 341 350 408 415 424 442 510 530 559 562 619 626 628 650 657 661 \
         669 707 714 747 760 805 818 820 831 840 858 909 916 925 949 951 206 253 360 425 509 \
         564 458 503 541 971 702 725 775",
    ),
    (
        "America/Denver",
        "303 719 720 970 983 385 435 801 505 575 406 307 915",
    ),
    ("America/Phoenix", "480 520 602 623 928"),
    (
        "America/Chicago",
        "210 214 254 281 325 346 361 409 430 432 469 512 682 713 726 737 806 817 830 832 903 \
         936 940 945 956 972 979 217 224 309 312 331 447 464 618 630 708 773 779 815 847 872 \
         218 320 507 612 651 763 952 262 274 414 534 608 715 920 314 417 557 573 636 660 816 \
         975 319 515 563 641 712 405 539 572 580 918 316 620 785 913 308 402 531 479 501 870 \
         225 318 337 504 985 228 601 662 769 205 251 256 334 659 938 701 615 629 731 901 931 \
         219 270 364 850",
    ),
    (
        "America/New_York",
        "212 315 332 347 516 518 585 607 631 646 680 716 718 838 845 914 917 929 934 201 551 \
         609 640 732 848 856 862 908 973 215 223 267 272 412 445 484 570 582 610 717 724 814 \
         835 878 339 351 413 508 617 774 781 857 978 203 475 860 959 401 802 603 207 302 240 \
         301 410 443 667 202 771 276 434 540 571 703 757 804 826 948 304 681 252 336 704 743 \
         828 910 919 980 984 803 839 843 854 864 229 404 470 478 678 706 762 770 912 943 239 \
         305 321 324 352 386 407 448 561 645 656 689 727 728 754 772 786 813 863 904 941 954 \
         216 220 234 283 326 330 380 419 436 440 513 567 614 740 937 231 248 269 313 517 586 \
         616 679 734 810 947 989 260 317 463 574 765 812 930 502 859 423",
    ),
    ("Pacific/Honolulu", "808"),
    ("America/Anchorage", "907"),
    ("America/Vancouver", "604 778 236 672 250"),
    ("America/Edmonton", "403 587 780 825 368"),
    ("America/Regina", "306 639 474"),
    ("America/Winnipeg", "204 431 584"),
    (
        "America/Toronto",
        "416 647 437 905 289 365 742 519 226 548 613 343 753 705 249 683 514 438 450 579 418 \
         581 367 819 873 468 263 354",
    ),
    ("America/Halifax", "902 782 506 428"),
    ("America/St_Johns", "709 879"),
];

/// The zone of an E.164 number, or `None` when the table cannot tell.
/// Area code → zone, built once: an import looks up every row (a scan of the table cost
/// more than the rest of an E.164 row's import).
fn nanp_zones() -> &'static std::collections::HashMap<&'static str, &'static str> {
    static MAP: std::sync::OnceLock<std::collections::HashMap<&'static str, &'static str>> =
        std::sync::OnceLock::new();
    MAP.get_or_init(|| {
        let mut map = std::collections::HashMap::new();
        for (zone, codes) in NANP {
            for code in codes.split_ascii_whitespace() {
                // The first zone listed for a code wins, as the scan did.
                map.entry(code).or_insert(*zone);
            }
        }
        map
    })
}

pub fn zone_for_number(e164: &str) -> Option<&'static str> {
    let digits = e164.strip_prefix('+')?;
    if let Some(national) = digits.strip_prefix('1') {
        let area = national.get(..3)?;
        return nanp_zones().get(area).copied();
    }
    COUNTRIES
        .iter()
        .filter(|(code, _)| digits.starts_with(code))
        .max_by_key(|(code, _)| code.len())
        .map(|(_, zone)| *zone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_map_to_zones() {
        assert_eq!(zone_for_number("+14155550100"), Some("America/Los_Angeles"));
        assert_eq!(zone_for_number("+13125550100"), Some("America/Chicago"));
        assert_eq!(zone_for_number("+12125550100"), Some("America/New_York"));
        assert_eq!(zone_for_number("+14165550100"), Some("America/Toronto"));
        assert_eq!(zone_for_number("+442079460958"), Some("Europe/London"));
        assert_eq!(zone_for_number("+353861234567"), Some("Europe/Dublin"));
        assert_eq!(zone_for_number("+81312345678"), Some("Asia/Tokyo"));
        // toll-free, fictional, multi-zone without a table: ambiguous
        assert_eq!(zone_for_number("+18005550100"), None);
        assert_eq!(zone_for_number("+15555550100"), None);
        assert_eq!(zone_for_number("+61212345678"), None);
    }

    #[test]
    fn every_zone_in_the_tables_exists() {
        for (zone, _) in NANP {
            assert!(zone.parse::<chrono_tz::Tz>().is_ok(), "{zone}");
        }
        for (_, zone) in COUNTRIES {
            assert!(zone.parse::<chrono_tz::Tz>().is_ok(), "{zone}");
        }
    }
}
