//! `tollgate sign` reproduces the public vectors (the same ones
//! `tollgate-sign`'s tests run) when given the request on its command line.

use std::io::Write as _;

use clap::Parser;

use super::{SignArgs, run};

/// `SignArgs` is flattened into the real CLI; parse it the same way here.
#[derive(Debug, Parser)]
struct Cmd {
    #[command(flatten)]
    args: SignArgs,
}

fn parse(argv: &[&str]) -> Result<SignArgs, clap::Error> {
    Cmd::try_parse_from(std::iter::once("sign").chain(argv.iter().copied())).map(|c| c.args)
}

/// A secret file (tests cannot set environment variables: `set_var` is unsafe).
fn secret_file(secret: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    writeln!(f, "{secret}").expect("write secret");
    f
}

fn sign(argv: &[&str], secret: &str) -> anyhow::Result<String> {
    let file = secret_file(secret);
    let path = file.path().to_str().expect("UTF-8 temp path").to_owned();
    let mut all: Vec<&str> = argv.to_vec();
    all.extend(["--secret-file", &path]);
    let out = run(&parse(&all).expect("arguments parse"))?;
    assert!(
        !out.contains(secret),
        "the secret leaked into the output:\n{out}"
    );
    Ok(out)
}

/// aliyun_rpc_v1.json `rpc-doc-v2-describededicatedhosts`.
const RPC_URL: &str = "http://ecs.aliyuncs.com/?Action=DescribeDedicatedHosts&Version=2014-05-26&Format=JSON\
    &AccessKeyId=testid&SignatureNonce=edb2b34af0af9a6d14deaf7c1a5315eb&Timestamp=2023-03-13T08%3A34%3A30Z\
    &SignatureMethod=HMAC-SHA1&SignatureVersion=1.0&RegionId=cn-beijing";
const RPC_CANONICAL: &str = "AccessKeyId=testid&Action=DescribeDedicatedHosts&Format=JSON&RegionId=cn-beijing\
    &SignatureMethod=HMAC-SHA1&SignatureNonce=edb2b34af0af9a6d14deaf7c1a5315eb&SignatureVersion=1.0\
    &Timestamp=2023-03-13T08%3A34%3A30Z&Version=2014-05-26";
const RPC_STS: &str = "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeDedicatedHosts%26Format%3DJSON\
    %26RegionId%3Dcn-beijing%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3Dedb2b34af0af9a6d14deaf7c1a5315eb\
    %26SignatureVersion%3D1.0%26Timestamp%3D2023-03-13T08%253A34%253A30Z%26Version%3D2014-05-26";
const RPC_SIGNATURE: &str = "9NaGiOspFP5UPcwX8Iwt2YJXXuk=";

#[test]
fn rpc_vector() {
    let out = sign(&["--scheme", "rpc", "--url", RPC_URL], "testsecret").expect("signs");
    let want = format!(
        "scheme:            HMAC-SHA1 (Alibaba RPC, SignatureVersion 1.0)\n\
         canonicalized query:\n{RPC_CANONICAL}\n\
         string to sign:\n{RPC_STS}\n\
         signature:         {RPC_SIGNATURE}\n"
    );
    assert!(out.starts_with(&want), "{out}");
    // The signed URL carries every parameter plus the signature, and is
    // itself a request that verifies.
    let url = out
        .lines()
        .find_map(|l| l.strip_prefix("signed url:"))
        .map(str::trim)
        .expect("a signed url line");
    let uri: http::Uri = url.parse().expect("a URL");
    let pairs: Vec<(String, String)> = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let sig = pairs
        .iter()
        .find(|(k, _)| k == "Signature")
        .map(|(_, v)| v.as_str());
    assert_eq!(sig, Some(RPC_SIGNATURE));
    assert!(
        tollgate_sign::aliyun_rpc::verify("GET", &pairs, "testsecret", RPC_SIGNATURE).is_ok(),
        "{url}"
    );
}

#[test]
fn rpc_checks_the_signature_it_was_given() {
    // Same request split between the URL and --param, with its Signature
    // (`=` and `+` percent-encoded on the wire).
    let url = "http://ecs.aliyuncs.com/?Action=DescribeDedicatedHosts&Version=2014-05-26&Format=JSON\
        &Signature=9NaGiOspFP5UPcwX8Iwt2YJXXuk%3D";
    let params = [
        "AccessKeyId=testid",
        "SignatureNonce=edb2b34af0af9a6d14deaf7c1a5315eb",
        "Timestamp=2023-03-13T08:34:30Z",
        "SignatureMethod=HMAC-SHA1",
        "SignatureVersion=1.0",
        "RegionId=cn-beijing",
    ];
    let mut argv = vec!["--scheme", "rpc", "--url", url];
    for p in &params {
        argv.extend(["--param", p]);
    }
    let out = sign(&argv, "testsecret").expect("signs");
    assert!(
        out.contains(&format!("string to sign:\n{RPC_STS}\n")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "provided:          {RPC_SIGNATURE}\nmatches:           yes\n"
        )),
        "{out}"
    );
    assert!(!out.contains("note:"), "{out}");

    let out = sign(&argv, "wrongsecret").expect("signs");
    assert!(out.contains("matches:           NO\n"), "{out}");
}

#[test]
fn rpc_signs_what_it_is_given_and_says_what_is_missing() {
    let out = sign(
        &["--scheme", "rpc", "--url", "http://h/?Action=A&Version=1"],
        "dummy-Secret-9qZ",
    )
    .expect("signs");
    assert!(
        out.contains("string to sign:\nGET&%2F&Action%3DA%26Version%3D1\n"),
        "{out}"
    );
    assert!(
        out.contains("note:              no AccessKeyId, SignatureMethod, SignatureVersion, SignatureNonce, Timestamp given"),
        "{out}"
    );
}

/// aliyun_v3.json `v3-doc-runinstances`.
#[test]
fn v3_vector() {
    let url = "https://ecs.cn-shanghai.aliyuncs.com/?ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd\
        &RegionId=cn-shanghai";
    let out = sign(
        &[
            "--scheme",
            "v3",
            "--url",
            url,
            "--header",
            "x-acs-action: RunInstances",
            "--header",
            "x-acs-version: 2014-05-26",
            "--header",
            "x-acs-date: 2023-10-26T10:22:32Z",
            "--header",
            "x-acs-signature-nonce: 3156853299f313e23d1673dc12e1703d",
            "--header",
            "x-acs-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "--access-key-id",
            "YourAccessKeyId",
        ],
        "YourAccessKeySecret",
    )
    .expect("signs");
    let signed =
        "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version";
    let signature = "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0";
    let want = format!(
        "scheme:            ACS3-HMAC-SHA256\n\
         canonical request:\n\
         POST\n\
         /\n\
         ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai\n\
         host:ecs.cn-shanghai.aliyuncs.com\n\
         x-acs-action:RunInstances\n\
         x-acs-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n\
         x-acs-date:2023-10-26T10:22:32Z\n\
         x-acs-signature-nonce:3156853299f313e23d1673dc12e1703d\n\
         x-acs-version:2014-05-26\n\
         \n\
         {signed}\n\
         e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n\
         string to sign:\n\
         ACS3-HMAC-SHA256\n\
         7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259\n\
         signature:         {signature}\n\
         authorization:     ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders={signed},Signature={signature}\n"
    );
    assert_eq!(out, want);
}

/// huawei_sdk_hmac_sha256.json `hw-doc-vpc-list`, pasted with its
/// Authorization: the tool signs the header list it names (content-type too).
#[test]
fn huawei_vector_with_authorization() {
    let auth = "Authorization: SDK-HMAC-SHA256 Access=QTWAOYTTINDUT2QVKYUC, \
        SignedHeaders=content-type;host;x-sdk-date, \
        Signature=7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe";
    let out = sign(
        &[
            "--scheme",
            "huawei",
            "--method",
            "GET",
            "--url",
            "https://service.region.example.com/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs?limit=2&marker=13551d6b-755d-4757-b956-536f674975c0",
            "--header",
            "Content-Type: application/json",
            "--header",
            "X-Sdk-Date: 20191115T033655Z",
            "--header",
            auth,
        ],
        "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc",
    )
    .expect("signs");
    assert!(
        out.contains(
            "string to sign:\nSDK-HMAC-SHA256\n20191115T033655Z\nb25362e603ee30f4f25e7858e8a7160fd36e803bb2dfe206278659d71a9bcd7a\n"
        ),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "authorization:     {}\n",
            &auth["Authorization: ".len()..]
        )),
        "{out}"
    );
    assert!(out.contains("matches:           yes\n"), "{out}");
}

#[test]
fn huawei_needs_the_sdk_date() {
    let err = sign(
        &["--scheme", "huawei", "--url", "https://h/v1"],
        "dummy-Secret-9qZ",
    )
    .expect_err("no X-Sdk-Date");
    assert!(format!("{err:#}").contains("X-Sdk-Date"), "{err:#}");
}

/// aliyun_roa.json `roa-python-core-get-signature`.
#[test]
fn roa_vector() {
    let out = sign(
        &[
            "--scheme",
            "roa",
            "--method",
            "GET",
            "--url",
            "https://ecs.aliyuncs.com/",
            "--header",
            "Date: 2018-12-04T03:55:31Z",
            "--header",
            "Accept: application/octet-stream",
            "--header",
            "x-acs-signature-method: HMAC-SHA1",
            "--header",
            "x-acs-signature-version: 1.0",
            "--header",
            "Authorization: acs access_key_id:HKCpm41tJg6b3EYdtGMbNuwALZU=",
        ],
        "access_key_secret",
    )
    .expect("signs");
    let want = "scheme:            acs (Alibaba ROA, HMAC-SHA1)\n\
        string to sign:\n\
        GET\napplication/octet-stream\n\n\n2018-12-04T03:55:31Z\n\
        x-acs-signature-method:HMAC-SHA1\nx-acs-signature-version:1.0\n/\n\
        signature:         HKCpm41tJg6b3EYdtGMbNuwALZU=\n\
        authorization:     acs access_key_id:HKCpm41tJg6b3EYdtGMbNuwALZU=\n\
        provided:          HKCpm41tJg6b3EYdtGMbNuwALZU=\n\
        matches:           yes\n";
    assert_eq!(out, want);
}

#[test]
fn roa_query_empty_values_and_bare_keys() {
    let argv = ["--scheme", "roa", "--url", "http://h/p?b=&a&c=x+y%2B"];
    let out = sign(&argv, "dummy-Secret-9qZ").expect("signs");
    assert!(out.contains("\n/p?a&b=&c=x y+\n"), "{out}");
    let mut bare = argv.to_vec();
    bare.extend(["--roa-empty-value", "bare-key"]);
    let out = sign(&bare, "dummy-Secret-9qZ").expect("signs");
    assert!(out.contains("\n/p?a&b&c=x y+\n"), "{out}");
}

#[test]
fn the_secret_never_comes_from_the_command_line() {
    assert!(parse(&["--scheme", "v3", "--url", "http://h/", "--secret", "x"]).is_err());
    // Exactly one source.
    assert!(parse(&["--scheme", "v3", "--url", "http://h/"]).is_err());
    assert!(
        parse(&[
            "--scheme",
            "v3",
            "--url",
            "http://h/",
            "--secret-env",
            "A",
            "--secret-file",
            "f"
        ])
        .is_err()
    );
}

#[test]
fn a_missing_secret_env_names_the_variable() {
    let args = parse(&[
        "--scheme",
        "rpc",
        "--url",
        "http://h/",
        "--secret-env",
        "TOLLGATE_TEST_SURELY_UNSET_4F2A",
    ])
    .expect("parses");
    let err = run(&args).expect_err("unset variable");
    assert!(
        format!("{err:#}").contains("TOLLGATE_TEST_SURELY_UNSET_4F2A"),
        "{err:#}"
    );
}

#[test]
fn bad_input_is_refused() {
    for argv in [
        &[
            "--scheme",
            "v3",
            "--url",
            "http://h/",
            "--header",
            "no colon",
        ][..],
        &[
            "--scheme",
            "v3",
            "--url",
            "http://h/",
            "--header",
            ": empty name",
        ][..],
        &[
            "--scheme",
            "v3",
            "--url",
            "http://h/",
            "--header",
            "Authorization: Bearer x",
        ][..],
        &["--scheme", "rpc", "--url", "http://h/?=v"][..],
        &["--scheme", "rpc", "--url", "http://h/?a=%FF"][..],
        &["--scheme", "rpc", "--url", "not a url"][..],
    ] {
        assert!(sign(argv, "dummy-Secret-9qZ").is_err(), "{argv:?}");
    }
}
