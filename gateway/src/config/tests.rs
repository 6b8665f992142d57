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
