"""Official Alibaba Cloud Python SDKs, unchanged but for the endpoint, against Tollgate.

Runs GetSubscriptionPrice and CreateInstance as a customer through:
  * aliyun-python-sdk-core (AcsClient + CommonRequest, RPC HMAC-SHA1),
  * alibabacloud-tea-openapi (the generated-SDK core) with its default
    ACS3-HMAC-SHA256 signature, and again with signature_algorithm='v2'.

Environment: TOLLGATE_ENDPOINT (host:port), TOLLGATE_AK, TOLLGATE_SECRET;
optional TOLLGATE_EXPECT_TRADE_PRICE: the TradePrice every GetSubscriptionPrice
must show (the partner price, when the gateway runs a pricing module),
compared as an exact decimal of the number the SDK parsed.
Prints one JSON line per call; exits non-zero if any call fails.
The secret is never printed.
"""

import json
import os
import sys
import uuid
from decimal import Decimal

ENDPOINT = os.environ["TOLLGATE_ENDPOINT"]
EXPECT_TRADE_PRICE = os.environ.get("TOLLGATE_EXPECT_TRADE_PRICE")
AK = os.environ["TOLLGATE_AK"]
SECRET = os.environ["TOLLGATE_SECRET"]
VERSION = "2017-12-14"

PRICE = {
    "ProductCode": "oss",
    "SubscriptionType": "Subscription",
    "OrderType": "NewOrder",
    "ServicePeriodQuantity": "12",
    "ServicePeriodUnit": "Month",
    "Quantity": "1",
    "Region": "cn-hangzhou",
    "ModuleList.1.ModuleCode": "PackageCode",
    "ModuleList.1.Config": "PackageCode:standard_500G",
}


def buy():
    return {
        "ProductCode": "oss",
        "SubscriptionType": "Subscription",
        "Period": "12",
        "Parameter.1.Code": "PackageCode",
        "Parameter.1.Value": "standard_500G",
        "Parameter.2.Code": "Region",
        "Parameter.2.Value": "cn-hangzhou",
        "ClientToken": uuid.uuid4().hex,
    }


def summary(sdk, action, body):
    data = body.get("Data") or {}
    return {
        "sdk": sdk,
        "action": action,
        "success": body.get("Success") is True,
        "code": body.get("Code"),
        "trade_price": str(data.get("TradePrice")) if "TradePrice" in data else None,
        "order_id": data.get("OrderId"),
    }


def core_sdk():
    from aliyunsdkcore.client import AcsClient
    from aliyunsdkcore.request import CommonRequest

    client = AcsClient(AK, SECRET, "cn-hangzhou")
    out = []
    for action, params in (("GetSubscriptionPrice", PRICE), ("CreateInstance", buy())):
        req = CommonRequest()
        req.set_domain(ENDPOINT)
        req.set_protocol_type("http")
        req.set_version(VERSION)
        req.set_action_name(action)
        req.set_method("POST")
        req.set_accept_format("json")
        for k, v in params.items():
            req.add_query_param(k, v)
        body = json.loads(client.do_action_with_exception(req))
        out.append(summary("aliyun-python-sdk-core", action, body))
    return out


def tea_sdk(signature_algorithm):
    from alibabacloud_tea_openapi.client import Client
    from alibabacloud_tea_openapi import utils_models as models
    from darabonba.runtime import RuntimeOptions

    config = models.Config(
        access_key_id=AK,
        access_key_secret=SECRET,
        endpoint=ENDPOINT,
        protocol="http",
        region_id="cn-hangzhou",
    )
    if signature_algorithm:
        config.signature_algorithm = signature_algorithm
    client = Client(config)
    name = "alibabacloud-tea-openapi " + (signature_algorithm or "ACS3-HMAC-SHA256")
    out = []
    for action, params in (("GetSubscriptionPrice", PRICE), ("CreateInstance", buy())):
        p = models.Params(
            action=action,
            version=VERSION,
            protocol="HTTP",
            method="POST",
            auth_type="AK",
            style="RPC",
            pathname="/",
            req_body_type="formData",
            body_type="json",
        )
        req = models.OpenApiRequest(query=dict(params))
        resp = client.call_api(p, req, RuntimeOptions())
        out.append(summary(name, action, resp["body"]))
    return out


def main():
    results = []
    failed = False
    for run in (core_sdk, lambda: tea_sdk(None), lambda: tea_sdk("v2")):
        try:
            results.extend(run())
        except Exception as e:  # report every SDK, not just the first failure
            failed = True
            msg = str(e).replace(SECRET, "***")
            results.append({"error": type(e).__name__, "message": msg[:500]})
    for r in results:
        if (
            EXPECT_TRADE_PRICE
            and r.get("action") == "GetSubscriptionPrice"
            and r.get("success")
        ):
            # The SDKs parse JSON numbers as floats; str() of the float gives
            # back the shortest text, which must be the partner's exact price.
            r["expected_trade_price"] = EXPECT_TRADE_PRICE
            if Decimal(r["trade_price"]) != Decimal(EXPECT_TRADE_PRICE):
                r["success"] = False
        print(json.dumps(r))
        if not r.get("success"):
            failed = True
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
