"""The official Huawei Cloud Python SDK (huaweicloudsdkbss), unchanged but
for the endpoint, calling BSS through Tollgate as a customer.

Credentials are given explicitly (GlobalCredentials with the customer's
domain id), so the SDK signs with SDK-HMAC-SHA256 and never calls IAM.
Prints one JSON line per call; exits non-zero on any SDK error or when an
expected price (TOLLGATE_EXPECT_*) differs.

Environment: TOLLGATE_ENDPOINT (host:port), TOLLGATE_AK, TOLLGATE_SK,
TOLLGATE_DOMAIN_ID; optional TOLLGATE_EXPECT_ON_DEMAND (the on-demand
rating's `amount`), TOLLGATE_EXPECT_PERIOD (the yearly list price),
TOLLGATE_EXPECT_ORDER (the newest order's `amount_after_discount`).
"""

import json
import os
import sys
from decimal import Decimal

from huaweicloudsdkcore.auth.credentials import GlobalCredentials
from huaweicloudsdkcore.exceptions import exceptions
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkbss.v2 import (
    BssClient,
    DemandProductInfo,
    ListCustomerOrdersRequest,
    ListOnDemandResourceRatingsRequest,
    ListRateOnPeriodDetailRequest,
    PeriodProductInfo,
    RateOnDemandReq,
    RateOnPeriodReq,
    ShowCustomerOrderDetailsRequest,
)


def client():
    creds = GlobalCredentials(
        os.environ["TOLLGATE_AK"],
        os.environ["TOLLGATE_SK"],
        os.environ["TOLLGATE_DOMAIN_ID"],
    )
    config = HttpConfig.get_default_config()
    config.timeout = (5, 30)
    return (
        BssClient.new_builder()
        .with_http_config(config)
        .with_credentials(creds)
        .with_endpoints(["http://" + os.environ["TOLLGATE_ENDPOINT"]])
        .build()
    )


def out(**fields):
    print(json.dumps(fields, default=str), flush=True)


def expect(name, got):
    want = os.environ.get(name)
    if want is not None and Decimal(str(got)) != Decimal(want):
        raise SystemExit(f"{name}: expected {want}, the SDK parsed {got}")


def main():
    bss = client()
    failures = 0

    on_demand = ListOnDemandResourceRatingsRequest(
        body=RateOnDemandReq(
            project_id="c4c24000000000000000000000599c2",
            product_infos=[
                DemandProductInfo(
                    id="1",
                    cloud_service_type="hws.service.type.ec2",
                    resource_type="hws.resource.type.vm",
                    resource_spec="c6.large.2.linux",
                    region="cn-north-4",
                    usage_factor="Duration",
                    usage_value=1,
                    usage_measure_id=4,
                    subscription_num=1,
                )
            ],
        )
    )
    period = ListRateOnPeriodDetailRequest(
        body=RateOnPeriodReq(
            project_id="c4c24000000000000000000000599c2",
            product_infos=[
                PeriodProductInfo(
                    id="1",
                    cloud_service_type="hws.service.type.ec2",
                    resource_type="hws.resource.type.vm",
                    resource_spec="c6.large.2.linux",
                    region="cn-north-4",
                    period_type=3,
                    period_num=1,
                    subscription_num=1,
                )
            ],
        )
    )
    try:
        r = bss.list_on_demand_resource_ratings(on_demand)
        line = r.product_rating_results[0]
        out(
            action="ListOnDemandResourceRatings",
            status=r.status_code,
            amount=str(r.amount),
            official_website_amount=str(r.official_website_amount),
            measure_id=r.measure_id,
            line_amount=str(line.amount),
        )
        expect("TOLLGATE_EXPECT_ON_DEMAND", r.amount)

        r = bss.list_rate_on_period_detail(period)
        official = r.official_website_rating_result
        offers = r.optional_discount_rating_results or []
        out(
            action="ListRateOnPeriodDetail",
            status=r.status_code,
            official_website_amount=str(official.official_website_amount),
            offers=[str(o.amount) for o in offers],
        )
        expect("TOLLGATE_EXPECT_PERIOD", official.official_website_amount)

        r = bss.list_customer_orders(ListCustomerOrdersRequest(limit=10, offset=0))
        orders = r.order_infos or []
        out(
            action="ListCustomerOrders",
            status=r.status_code,
            total_count=r.total_count,
            orders=[
                {"order_id": o.order_id, "amount_after_discount": str(o.amount_after_discount)}
                for o in orders
            ],
        )
        if orders:
            d = bss.show_customer_order_details(
                ShowCustomerOrderDetailsRequest(order_id=orders[0].order_id)
            )
            out(
                action="ShowCustomerOrderDetails",
                status=d.status_code,
                order_id=d.order_info.order_id,
                amount_after_discount=str(d.order_info.amount_after_discount),
            )
            expect("TOLLGATE_EXPECT_ORDER", d.order_info.amount_after_discount)
    except exceptions.ClientRequestException as e:
        out(
            action="error",
            status=e.status_code,
            error_code=e.error_code,
            error_msg=e.error_msg,
            request_id=e.request_id,
        )
        failures += 1
    except exceptions.SdkException as e:
        out(action="error", error=str(e))
        failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
