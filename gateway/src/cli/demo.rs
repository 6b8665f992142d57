//! `tollgate demo`: the simulated cloud and the gateway on the example
//! policies, a scripted session, and a table of what happened.
//!
//! Every row states what should happen and checks it, including what the
//! simulated cloud received (the partner's key and the customer's OwnerId,
//! or nothing at all for refused calls); the command fails if any row is off.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use http::Method;

use crate::aliyun::outbound::Freshness;
use crate::client::{AliyunClient, HuaweiClient, Reply};
use crate::config::{OutboundScheme, ServeConfig};
use crate::proxy::Gateway;
use crate::server::{Shutdown, serve};
use crate::sim::{self, SimConfig};

/// `tollgate demo` options.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// The policy folder (with `tollgate.toml`, `customers.toml`, `sim.toml`).
    #[arg(long, default_value = "policies")]
    pub policies: PathBuf,
}

const BSS: &str = "2017-12-14";
const ECS: &str = "2014-05-26";

struct Row {
    caller: String,
    call: String,
    expect: String,
    got: String,
    cloud: String,
    ok: bool,
}

fn read_secret(policies: &Path, file: &str) -> anyhow::Result<String> {
    let path = policies.join("secrets").join(file);
    Ok(std::fs::read_to_string(&path)
        .with_context(|| format!("reading {}", path.display()))?
        .trim()
        .to_owned())
}

/// Runs the demo.
pub async fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let policies = &args.policies;
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let sim = sim::spawn(SimConfig::load(&policies.join("sim.toml"))?, loopback).await?;

    let mut cfg = ServeConfig::load(&policies.join("tollgate.toml"))?;
    if cfg.pricing.is_some() {
        // Pricing modules are built from source, never committed: the first
        // run on a fresh clone builds them.
        crate::cli::pricing::ensure_example_modules(policies)?;
    }
    for u in &mut cfg.upstreams {
        u.url = format!("http://{}", sim.addr);
    }
    if let Some(h) = &mut cfg.partner.huawei {
        h.url = format!("http://{}", sim.addr);
    }
    // The demo's budget ledger lives in a fresh temporary folder: every run
    // starts from the policy set's initial budgets and leaves nothing behind.
    let ledger_dir =
        std::env::temp_dir().join(format!("tollgate-demo-{}", uuid::Uuid::new_v4().simple()));
    cfg.ledger = crate::ledger::LedgerConfig {
        backend: crate::ledger::Backend::Sqlite,
        path: ledger_dir.join("ledger.sqlite"),
        url_env: None,
        url_file: None,
        ..cfg.ledger.clone()
    };
    let gateway = Arc::new(Gateway::from_config(&cfg)?);
    let listener = tokio::net::TcpListener::bind(loopback).await?;
    let gw_addr = listener.local_addr()?;
    let shutdown = Shutdown::new();
    let server = tokio::spawn(serve(
        listener,
        move |req, peer| gateway.clone().handle(req, peer),
        shutdown.clone(),
    ));

    println!(
        "Tollgate demo: simulated cloud on {}, gateway on {gw_addr}\n",
        sim.addr
    );
    let gw = gw_addr.to_string();
    let acme = AliyunClient::new(
        &gw,
        "TGACMEDEMOKEY0001",
        &read_secret(policies, "acme.secret")?,
        OutboundScheme::Rpc,
    );
    let acme_v3 = AliyunClient::new(
        &gw,
        "TGACMEDEMOKEY0001",
        &read_secret(policies, "acme.secret")?,
        OutboundScheme::V3,
    );
    let shop = AliyunClient::new(
        &gw,
        "TGSHOPFRONTDEMO01",
        &read_secret(policies, "shopfront.secret")?,
        OutboundScheme::Rpc,
    );
    let initech = AliyunClient::new(
        &gw,
        "TGINITECHDEMOKEY1",
        &read_secret(policies, "initech.secret")?,
        OutboundScheme::Rpc,
    );
    let forger = AliyunClient::new(
        &gw,
        "TGACMEDEMOKEY0001",
        "a-guessed-secret",
        OutboundScheme::Rpc,
    );
    let (acme_uid, globex_uid, initech_uid) =
        ("2000000000000001", "2000000000000002", "2000000000000003");

    let price: &[(&str, &str)] = &[
        ("ProductCode", "oss"),
        ("SubscriptionType", "Subscription"),
        ("OrderType", "NewOrder"),
        ("ServicePeriodQuantity", "12"),
        ("ServicePeriodUnit", "Month"),
        ("Quantity", "1"),
        ("Region", "cn-hangzhou"),
        ("ModuleList.1.ModuleCode", "PackageCode"),
        ("ModuleList.1.Config", "PackageCode:standard_500G"),
    ];
    let buy: &[(&str, &str)] = &[
        ("ProductCode", "oss"),
        ("SubscriptionType", "Subscription"),
        ("Period", "12"),
        ("Parameter.1.Code", "PackageCode"),
        ("Parameter.1.Value", "standard_500G"),
        ("Parameter.2.Code", "Region"),
        ("Parameter.2.Value", "cn-hangzhou"),
    ];
    let ecs_price: &[(&str, &str)] = &[
        ("RegionId", "cn-hangzhou"),
        ("InstanceType", "ecs.g6.large"),
        ("PriceUnit", "Month"),
        ("Period", "1"),
    ];

    let mut rows = Vec::new();
    let mut seen = 0usize;
    let mut step =
        |caller: &str, call: &str, expect_uid: Option<&str>, expect_code: &str, reply: Reply| {
            let recorded = sim.sim.recorded();
            let mut fresh: Vec<_> = recorded[seen..].to_vec();
            seen = recorded.len();
            // Before a purchase the gateway asks the cloud for its price
            // (to hold it against the budget): not part of what is checked.
            if call.starts_with("CreateInstance") || call.starts_with("RunInstances") {
                fresh.retain(|r| !crate::ledger::purchase::is_price_lookup(&r.action));
            }
            let cloud = match fresh.as_slice() {
                [] => "nothing (refused at the gateway)".to_owned(),
                [r] => format!(
                    "{} as OwnerId {}",
                    r.access_key_id,
                    r.owner_id.as_deref().unwrap_or("-")
                ),
                many => format!("{} requests", many.len()),
            };
            let got = if reply.status.is_success() {
                format!("{} {}", reply.status.as_u16(), summarize(&reply))
            } else {
                format!("{} {}", reply.status.as_u16(), reply.code())
            };
            let cloud_ok = match expect_uid {
                Some(uid) => {
                    fresh.len() == 1
                        && fresh[0].access_key_id == "TGPARTNERDEMOKEY01"
                        && fresh[0].owner_id.as_deref() == Some(uid)
                }
                None => fresh.is_empty(),
            };
            let code_ok = if expect_code == "OK" {
                reply.status.is_success()
            } else {
                reply.code() == expect_code
            };
            rows.push(Row {
                caller: caller.to_owned(),
                call: call.to_owned(),
                expect: expect_code.to_owned(),
                got,
                cloud,
                ok: cloud_ok && code_ok,
            });
        };

    step(
        "acme (own key)",
        "GetSubscriptionPrice oss 12 months",
        Some(acme_uid),
        "OK",
        acme.call("GetSubscriptionPrice", BSS, price).await?,
    );
    step(
        "acme (own key)",
        "CreateInstance oss package",
        Some(acme_uid),
        "OK",
        acme.call("CreateInstance", BSS, buy).await?,
    );
    step(
        "acme (own key)",
        "QueryOrders",
        Some(acme_uid),
        "OK",
        acme.call("QueryOrders", BSS, &[]).await?,
    );
    step(
        "acme (V3 signature)",
        "ECS DescribePrice ecs.g6.large",
        Some(acme_uid),
        "OK",
        acme_v3.call("DescribePrice", ECS, ecs_price).await?,
    );
    let with_owner = |uid: &'static str, p: &[(&'static str, &'static str)]| {
        let mut v = p.to_vec();
        v.push(("OwnerId", uid));
        v
    };
    step(
        "shop frontend for acme",
        "GetSubscriptionPrice oss",
        Some(acme_uid),
        "OK",
        shop.call("GetSubscriptionPrice", BSS, &with_owner(acme_uid, price))
            .await?,
    );
    step(
        "shop frontend for globex",
        "CreateInstance oss package",
        Some(globex_uid),
        "OK",
        shop.call("CreateInstance", BSS, &with_owner(globex_uid, buy))
            .await?,
    );
    step(
        "shop frontend for globex",
        "QueryOrders",
        Some(globex_uid),
        "OK",
        shop.call("QueryOrders", BSS, &[("OwnerId", globex_uid)])
            .await?,
    );
    step(
        "forger (acme's key id, wrong secret)",
        "QueryOrders",
        None,
        "SignatureDoesNotMatch",
        forger.call("QueryOrders", BSS, &[]).await?,
    );
    let fresh = Freshness::now();
    let first = acme
        .send(acme.request_with(Method::POST, "QueryOrders", BSS, &[], &fresh))
        .await?;
    step("acme (own key)", "QueryOrders", Some(acme_uid), "OK", first);
    let replay = acme
        .send(acme.request_with(Method::POST, "QueryOrders", BSS, &[], &fresh))
        .await?;
    step(
        "replayer (same signed call again)",
        "QueryOrders",
        None,
        "SignatureNonceUsed",
        replay,
    );
    step(
        "acme posing as globex",
        "QueryOrders OwnerId=globex",
        None,
        "InvalidOwner",
        acme.call("QueryOrders", BSS, &[("OwnerId", globex_uid)])
            .await?,
    );
    step(
        "shop frontend for initech",
        "QueryOrders (not in acts_for)",
        None,
        "InvalidOwner",
        shop.call("QueryOrders", BSS, &[("OwnerId", initech_uid)])
            .await?,
    );

    // Permissions (policies/permissions/): initech's policies grant prices,
    // not order listings.
    step(
        "initech (own key)",
        "GetSubscriptionPrice oss",
        Some(initech_uid),
        "OK",
        initech.call("GetSubscriptionPrice", BSS, price).await?,
    );
    step(
        "initech (no bssapi:QueryOrders)",
        "QueryOrders",
        None,
        "Forbidden.RAM",
        initech.call("QueryOrders", BSS, &[]).await?,
    );

    // Huawei Cloud BSS: acme and globex call with the AK/SK the partner
    // issued them; BSS sees the credential the partner holds for each
    // customer's own account (X-Domain-Id), never the customer's key.
    let hw_acme = HuaweiClient::new(
        &gw,
        "TGHWACMECUSTOMER0001",
        &read_secret(policies, "huawei/acme-customer.sk")?,
        Some(ACME_DOMAIN),
    );
    let hw_globex = HuaweiClient::new(
        &gw,
        "TGHWGLOBEXCUSTOMER01",
        &read_secret(policies, "huawei/globex-customer.sk")?,
        Some(GLOBEX_DOMAIN),
    );
    let hw_forger = HuaweiClient::new(
        &gw,
        "TGHWACMECUSTOMER0001",
        "a-guessed-secret",
        Some(ACME_DOMAIN),
    );
    let rating = serde_json::json!({"project_id": "c4c24000000000000000000000599c2", "product_infos": [{
        "id": "1", "cloud_service_type": "hws.service.type.ec2", "resource_type": "hws.resource.type.vm",
        "resource_spec": "c6.large.2.linux", "region": "cn-north-4", "usage_factor": "Duration",
        "usage_value": 1, "usage_measure_id": 4, "subscription_num": 1}]});
    let mut hw_step = |caller: &str,
                       call: &str,
                       expect: Option<(&str, &str)>,
                       expect_code: &str,
                       reply: Reply| {
        let recorded = sim.sim.recorded();
        let fresh: Vec<_> = recorded[seen..].to_vec();
        seen = recorded.len();
        let cloud = match fresh.as_slice() {
            [] => "nothing (refused at the gateway)".to_owned(),
            [r] => format!(
                "{} as X-Domain-Id {}",
                r.access_key_id,
                r.owner_id.as_deref().unwrap_or("-")
            ),
            many => format!("{} requests", many.len()),
        };
        let got = if reply.status.is_success() {
            format!("{} {}", reply.status.as_u16(), summarize_huawei(&reply))
        } else {
            format!("{} {}", reply.status.as_u16(), reply.code())
        };
        let cloud_ok = match expect {
            Some((ak, domain)) => {
                fresh.len() == 1
                    && fresh[0].access_key_id == ak
                    && fresh[0].owner_id.as_deref() == Some(domain)
            }
            None => fresh.is_empty(),
        };
        let code_ok = if expect_code == "OK" {
            reply.status.is_success() && reply.code().is_empty()
        } else {
            reply.code() == expect_code
        };
        rows.push(Row {
            caller: caller.to_owned(),
            call: call.to_owned(),
            expect: expect_code.to_owned(),
            got,
            cloud,
            ok: cloud_ok && code_ok,
        });
    };
    hw_step(
        "acme (Huawei SDK key)",
        "ListOnDemandResourceRatings c6.large.2",
        Some(("HWACMEHELDBYPARTNER1", ACME_DOMAIN)),
        "OK",
        hw_acme
            .call(
                Method::POST,
                "/v2/bills/ratings/on-demand-resources",
                Some(&rating),
            )
            .await?,
    );
    hw_step(
        "acme (Huawei SDK key)",
        "ListCustomerOrders",
        Some(("HWACMEHELDBYPARTNER1", ACME_DOMAIN)),
        "OK",
        hw_acme
            .call(Method::GET, "/v2/orders/customer-orders?limit=10", None)
            .await?,
    );
    hw_step(
        "globex (no bss:balance:view)",
        "ShowCustomerAccountBalances",
        None,
        "CBC.0151",
        hw_globex
            .call(Method::GET, "/v2/accounts/customer-accounts/balances", None)
            .await?,
    );
    hw_step(
        "forger (acme's Huawei AK, wrong SK)",
        "ListCustomerOrders",
        None,
        "APIG.0301",
        hw_forger
            .call(Method::GET, "/v2/orders/customer-orders", None)
            .await?,
    );

    print_table(&rows);
    shutdown.trigger();
    let _ = server.await;
    sim.stop();
    let _ = std::fs::remove_dir_all(&ledger_dir);
    let failed = rows.iter().filter(|r| !r.ok).count();
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {} demo steps did not behave as expected",
            rows.len()
        );
    }
    println!(
        "\nAll {} steps behaved as expected: the cloud saw only the partner's keys, always for the right customer (OwnerId; for Huawei, the key held for the customer's own account).",
        rows.len()
    );
    Ok(())
}

fn summarize(reply: &Reply) -> String {
    let data = reply.json.get("Data").unwrap_or(&reply.json);
    if let Some(p) = data.get("TradePrice") {
        return format!(
            "TradePrice {p} {}",
            data.get("Currency").and_then(|c| c.as_str()).unwrap_or("")
        );
    }
    if let Some(p) = reply.json.pointer("/PriceInfo/Price/TradePrice") {
        return format!("TradePrice {p}");
    }
    if let Some(o) = data.get("OrderId") {
        return format!("OrderId {}", o.as_str().unwrap_or(""));
    }
    if let Some(n) = data.get("TotalCount") {
        return format!("{n} orders");
    }
    "Success".to_owned()
}

fn summarize_huawei(reply: &Reply) -> String {
    let j = &reply.json;
    if let Some(a) = j.get("amount") {
        return format!(
            "amount {a} {}",
            j.get("currency").and_then(|c| c.as_str()).unwrap_or("")
        );
    }
    if let Some(n) = j.get("total_count") {
        return format!("{n} orders");
    }
    "Success".to_owned()
}

/// The demo customers' Huawei accounts (policies/customers.toml).
const ACME_DOMAIN: &str = "0a7c3b2f3d80d4a20f7ac004cbde0001";
const GLOBEX_DOMAIN: &str = "0a7c3b2f3d80d4a20f7ac004cbde0002";

fn print_table(rows: &[Row]) {
    let headers = [
        "#",
        "caller",
        "call",
        "expected",
        "got",
        "what the cloud received",
        "check",
    ];
    let cells: Vec<[String; 7]> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            [
                (i + 1).to_string(),
                r.caller.clone(),
                r.call.clone(),
                r.expect.clone(),
                r.got.clone(),
                r.cloud.clone(),
                if r.ok {
                    "ok".into()
                } else {
                    "UNEXPECTED".into()
                },
            ]
        })
        .collect();
    let mut widths = headers.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cols: &[String]| {
        let parts: Vec<String> = cols
            .iter()
            .zip(widths.iter())
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", parts.join(" | ").trim_end());
    };
    line(&headers.map(str::to_owned));
    println!(
        "{}",
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("-+-")
    );
    for row in &cells {
        line(row);
    }
}
