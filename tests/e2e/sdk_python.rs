//! The official Alibaba Cloud Python SDKs, unchanged but for the endpoint,
//! call through the gateway: `aliyun-python-sdk-core` (RPC HMAC-SHA1) and
//! `alibabacloud-tea-openapi` (ACS3-HMAC-SHA256 and v2).
//!
//! The SDKs are installed from PyPI into `target/sdk-venv` on first use
//! (pinned in `tests/sdk/requirements.txt`). Set `TOLLGATE_SKIP_PYTHON_SDK=1`
//! to skip on a machine without Python or PyPI; CI never sets it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("repo")
}

/// The venv's python, created and filled if needed. One test process at a
/// time builds it (a lock file), so parallel test runs do not race pip.
fn sdk_python() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"));
    let venv = target.join("sdk-venv");
    let python = venv.join("bin/python");
    let stamp = venv.join(".installed");
    let reqs = repo().join("tests/sdk/requirements.txt");
    let wanted = std::fs::read_to_string(&reqs).expect("requirements");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return python;
    }
    let ok = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "python3 -m venv failed (set TOLLGATE_SKIP_PYTHON_SDK=1 on machines without Python)"
    );
    let ok = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
        ])
        .arg(&reqs)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "pip install of the official SDKs failed");
    std::fs::write(&stamp, wanted).expect("stamp");
    python
}

#[tokio::test]
async fn official_python_sdks_work_through_the_gateway() {
    if std::env::var_os("TOLLGATE_SKIP_PYTHON_SDK").is_some() {
        eprintln!("skipped: TOLLGATE_SKIP_PYTHON_SDK is set");
        return;
    }
    let python = tokio::task::spawn_blocking(sdk_python).await.expect("venv");
    let stack = Stack::start();
    let out = Command::new(python)
        .arg(repo().join("tests/sdk/aliyun_sdk_check.py"))
        .env("TOLLGATE_ENDPOINT", stack.gateway.addr.to_string())
        .env("TOLLGATE_AK", ACME_AK)
        .env("TOLLGATE_SECRET", secret("acme.secret"))
        .output()
        .expect("run the SDK script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "SDK calls failed:\n{stdout}\n{stderr}\ngateway log:\n{}",
        stack.gateway.logs()
    );

    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(lines.len(), 6, "{stdout}");
    for l in &lines {
        assert_eq!(l["success"], true, "{l}");
    }
    let seen = stack.recorded().await;
    // Before each purchase the gateway prices it to hold the amount against
    // the budget: DescribePricingModule (once, then cached) and
    // GetSubscriptionPrice (per purchase), signed with the partner's key.
    assert_eq!(seen.len(), 6 + 1 + 3, "{seen:?}");
    assert!(
        seen.iter()
            .all(|r| r.access_key_id == PARTNER_AK && r.owner_id.as_deref() == Some(ACME_UID))
    );
    let buys: Vec<_> = seen
        .iter()
        .filter(|r| r.action == "CreateInstance")
        .collect();
    assert_eq!(buys.len(), 3);
}

/// With a pricing module, every official SDK parses the partner's price
/// from the rewritten answer (the provider's own fields and JSON types).
#[tokio::test]
async fn official_python_sdks_see_partner_prices() {
    if std::env::var_os("TOLLGATE_SKIP_PYTHON_SDK").is_some() {
        eprintln!("skipped: TOLLGATE_SKIP_PYTHON_SDK is set");
        return;
    }
    let python = tokio::task::spawn_blocking(sdk_python).await.expect("venv");
    let wasm = policies().join("pricing/reference.wasm");
    assert!(
        wasm.exists(),
        "{}: run scripts/build-guests",
        wasm.display()
    );
    let stack = Stack::start_priced(&wasm, &policies().join("pricing/reference.toml"));
    let out = Command::new(python)
        .arg(repo().join("tests/sdk/aliyun_sdk_check.py"))
        .env("TOLLGATE_ENDPOINT", stack.gateway.addr.to_string())
        .env("TOLLGATE_AK", ACME_AK)
        .env("TOLLGATE_SECRET", secret("acme.secret"))
        // acme's contract price for the 500 GB package plus the partner's
        // support plan (policies/pricing/reference.toml); official: 91.8.
        .env("TOLLGATE_EXPECT_TRADE_PRICE", "123.36")
        .output()
        .expect("run the SDK script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "SDK calls failed:\n{stdout}\n{stderr}\ngateway log:\n{}",
        stack.gateway.logs()
    );
    let prices: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["action"] == "GetSubscriptionPrice")
        .collect();
    assert_eq!(prices.len(), 3, "{stdout}");
    for p in &prices {
        assert_eq!(p["trade_price"], "123.36", "{p}");
    }
}

/// The official Huawei BSS SDK (`huaweicloudsdkbss`), pointed at the
/// gateway over http with a customer's issued AK/SK and domain id
/// (GlobalCredentials, so it never calls IAM), lists ratings and orders and
/// parses the partner's prices.
#[tokio::test]
async fn official_huawei_sdk_sees_partner_prices() {
    if std::env::var_os("TOLLGATE_SKIP_PYTHON_SDK").is_some() {
        eprintln!("skipped: TOLLGATE_SKIP_PYTHON_SDK is set");
        return;
    }
    let python = tokio::task::spawn_blocking(sdk_python).await.expect("venv");
    let wasm = policies().join("pricing/reference.wasm");
    assert!(
        wasm.exists(),
        "{}: run scripts/build-guests",
        wasm.display()
    );
    let stack = Stack::start_priced(&wasm, &policies().join("pricing/reference.toml"));
    let out = Command::new(python)
        .arg(repo().join("tests/sdk/huawei_sdk_check.py"))
        .env("TOLLGATE_ENDPOINT", stack.gateway.addr.to_string())
        .env("TOLLGATE_AK", ACME_HW_AK)
        .env("TOLLGATE_SK", secret("huawei/acme-customer.sk"))
        .env("TOLLGATE_DOMAIN_ID", ACME_DOMAIN)
        // acme's prices are the official list prices + 10 %
        // (policies/pricing/reference.toml): 0.78/h -> 0.86 (2 decimals),
        // 1046.40/year -> 1151.04, the unpaid 35.00 order -> 38.50.
        .env("TOLLGATE_EXPECT_ON_DEMAND", "0.86")
        .env("TOLLGATE_EXPECT_PERIOD", "1151.04")
        .env("TOLLGATE_EXPECT_ORDER", "38.5")
        .output()
        .expect("run the SDK script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "SDK calls failed:\n{stdout}\n{stderr}\ngateway log:\n{}",
        stack.gateway.logs()
    );
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let actions: Vec<&str> = lines.iter().filter_map(|l| l["action"].as_str()).collect();
    assert_eq!(
        actions,
        [
            "ListOnDemandResourceRatings",
            "ListRateOnPeriodDetail",
            "ListCustomerOrders",
            "ShowCustomerOrderDetails"
        ],
        "{stdout}"
    );
    assert_eq!(lines[0]["amount"], "0.86", "{stdout}");
    assert_eq!(lines[2]["total_count"], 2, "{stdout}");
    // The official prices never reach the customer: 1046.4 / 941.76 / 35.
    assert!(
        !stdout.contains("941.76") && !stdout.contains("1046.4"),
        "{stdout}"
    );
    let seen: Vec<_> = stack
        .recorded()
        .await
        .into_iter()
        .filter(|r| r.version == "huawei-bss")
        .collect();
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert!(
        seen.iter()
            .all(|r| r.access_key_id == ACME_HW_HELD_AK
                && r.owner_id.as_deref() == Some(ACME_DOMAIN)),
        "{seen:?}"
    );
}
