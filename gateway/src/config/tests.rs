use super::*;

const MIN: &str = r#"
customers_file = "customers.toml"
[partner.aliyun]
access_key_id = "TGPARTNER"
secret_env = "X"
[[upstream]]
product = "bssopenapi"
version = "2017-12-14"
url = "http://127.0.0.1:9000"
"#;

#[test]
fn defaults_fill_the_server_section() {
    let cfg = ServeConfig::from_toml(MIN, Path::new("/etc/tollgate")).expect("parses");
    assert_eq!(cfg.server.timestamp_window_secs, 900);
    assert_eq!(cfg.server.max_body_bytes, 1 << 20);
    assert_eq!(cfg.upstreams[0].signature, OutboundScheme::Rpc);
    assert_eq!(
        cfg.customers_path(),
        PathBuf::from("/etc/tollgate/customers.toml")
    );
}

#[test]
fn an_inline_secret_is_refused() {
    let text = MIN.replace("secret_env = \"X\"", "secret = \"oops\"");
    let err = ServeConfig::from_toml(&text, Path::new(".")).expect_err("inline secret");
    assert!(format!("{err:#}").contains("unknown field"), "{err:#}");
}

#[test]
fn https_upstreams_are_refused_loudly() {
    let text = MIN.replace("http://127.0.0.1:9000", "https://business.aliyuncs.com");
    assert!(ServeConfig::from_toml(&text, Path::new(".")).is_err());
}

#[test]
fn customers_file_cross_checks() {
    let ok = r#"
[[customer]]
id = "acme"
aliyun_uid = "2000000000000001"
[[key]]
access_key_id = "K1"
kind = "customer"
customer = "acme"
secret_env = "A"
[[key]]
access_key_id = "F1"
kind = "frontend"
acts_for = ["acme"]
secret_env = "B"
"#;
    let f: CustomersFile = toml::from_str(ok).expect("parses");
    f.validate().expect("valid");

    let unknown = ok.replace("customer = \"acme\"", "customer = \"nobody\"");
    let f: CustomersFile = toml::from_str(&unknown).expect("parses");
    assert!(f.validate().is_err());

    let dup = format!("{ok}\n[[customer]]\nid = \"acme\"\naliyun_uid = \"3\"\n");
    let f: CustomersFile = toml::from_str(&dup).expect("parses");
    assert!(f.validate().is_err());
}

#[test]
fn huawei_partner_section_is_checked() {
    let hw = format!(
        "{MIN}\n[partner.huawei]\nurl = \"http://127.0.0.1:9000\"\n[[partner.huawei.customer]]\ncustomer = \"acme\"\naccess_key_id = \"HWAK\"\nsecret_env = \"HW\"\n"
    );
    let cfg = ServeConfig::from_toml(&hw, Path::new(".")).expect("parses");
    let h = cfg.partner.huawei.expect("huawei");
    assert_eq!(h.timeout_ms, 30_000);
    assert_eq!(h.customers[0].customer, "acme");
    // An inline SK, an https endpoint, a customer listed twice: refused.
    let inline = hw.replace("secret_env = \"HW\"", "secret = \"oops\"");
    assert!(ServeConfig::from_toml(&inline, Path::new(".")).is_err());
    let https = hw.replace(
        "http://127.0.0.1:9000\"\n[[partner",
        "https://bss.myhuaweicloud.com\"\n[[partner",
    );
    assert!(ServeConfig::from_toml(&https, Path::new(".")).is_err());
    let twice = format!(
        "{hw}[[partner.huawei.customer]]\ncustomer = \"acme\"\naccess_key_id = \"HWAK2\"\nsecret_env = \"HW2\"\n"
    );
    let err = ServeConfig::from_toml(&twice, Path::new(".")).expect_err("twice");
    assert!(format!("{err:#}").contains("listed twice"), "{err:#}");
}

#[test]
fn huawei_keys_need_a_customer_with_a_huawei_account() {
    let ok = r#"
[[customer]]
id = "acme"
aliyun_uid = "2000000000000001"
huawei_domain_id = "0a7c3b2f3d80d4a20f7ac004cbde0001"
[[huawei_key]]
access_key_id = "TGHW1"
customer = "acme"
secret_env = "A"
"#;
    let f: CustomersFile = toml::from_str(ok).expect("parses");
    f.validate().expect("valid");
    let no_domain = ok.replace(
        "huawei_domain_id = \"0a7c3b2f3d80d4a20f7ac004cbde0001\"\n",
        "",
    );
    let f: CustomersFile = toml::from_str(&no_domain).expect("parses");
    let err = f.validate().expect_err("no domain");
    assert!(format!("{err:#}").contains("huawei_domain_id"), "{err:#}");
    let unknown = ok.replace("customer = \"acme\"", "customer = \"nobody\"");
    let f: CustomersFile = toml::from_str(&unknown).expect("parses");
    assert!(f.validate().is_err());
    let bad_domain = ok.replace("0a7c3b2f3d80d4a20f7ac004cbde0001", "../x");
    let f: CustomersFile = toml::from_str(&bad_domain).expect("parses");
    assert!(f.validate().is_err());
    let dup = format!(
        "{ok}\n[[huawei_key]]\naccess_key_id = \"TGHW1\"\ncustomer = \"acme\"\nsecret_env = \"B\"\n"
    );
    let f: CustomersFile = toml::from_str(&dup).expect("parses");
    assert!(f.validate().is_err());
}

#[test]
fn customer_tags_reach_the_key_table_within_their_limits() {
    let text = |tags: &str| {
        format!(
            "[[customer]]\nid = \"acme\"\naliyun_uid = \"2000000000000001\"\ntags = {tags}\n\
             [[key]]\naccess_key_id = \"K1\"\nkind = \"customer\"\ncustomer = \"acme\"\nsecret_env = \"TOLLGATE_TEST_TAGS_SECRET\"\n"
        )
    };
    let f: CustomersFile = toml::from_str(&text(r#"["tier:gold", "east"]"#)).expect("parses");
    f.validate().expect("valid");
    let secret_dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(secret_dir.path().join("k1.secret"), "s3cr3t\n").expect("write");
    let f: CustomersFile = toml::from_str(&text(r#"["tier:gold", "east"]"#).replace(
        "secret_env = \"TOLLGATE_TEST_TAGS_SECRET\"",
        "secret_file = \"k1.secret\"",
    ))
    .expect("parses");
    let keys = crate::auth::KeyTable::from_file(&f, secret_dir.path()).expect("keys");
    let entry = keys.get("K1").expect("key");
    let crate::auth::Principal::Customer(c) = &entry.principal else {
        panic!("a customer key");
    };
    assert_eq!(c.tags, ["tier:gold", "east"]);

    let many = format!(
        "[{}]",
        (0..=super::customers::MAX_TAGS)
            .map(|i| format!("\"t{i}\""))
            .collect::<Vec<_>>()
            .join(",")
    );
    let f: CustomersFile = toml::from_str(&text(&many)).expect("parses");
    assert!(f.validate().is_err(), "more than MAX_TAGS tags");
    let long = format!("[\"{}\"]", "x".repeat(super::customers::MAX_TAG_BYTES + 1));
    let f: CustomersFile = toml::from_str(&text(&long)).expect("parses");
    assert!(f.validate().is_err(), "a tag longer than MAX_TAG_BYTES");
    let f: CustomersFile = toml::from_str(&text(r#"["a\nb"]"#)).expect("parses");
    assert!(f.validate().is_err(), "a control character");
    let f: CustomersFile = toml::from_str(&text(r#"[""]"#)).expect("parses");
    assert!(f.validate().is_err(), "an empty tag");
}
