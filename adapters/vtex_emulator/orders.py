"""VTEX orders as ``GET /api/oms/pvt/orders/{orderId}`` answers them, built from a few facts.

Every field an integration reads is filled in with VTEX's own shapes (the 200 schema of that
operation), with plausible values for the rest, so that a client reading real orders reads
these the same way. Payment data is present on purpose: the ledger must never send it back.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

# Statuses after which VTEX no longer holds a reservation for the order's items.
RELEASED_STATES = frozenset({"invoiced", "canceled"})
# Statuses in which the payment has not been authorised (so authorizedDate stays null).
UNAUTHORIZED_STATES = frozenset({"payment-pending", "canceled"})
STATUS_DESCRIPTIONS = {
    "payment-pending": "Pagamento Pendente",
    "payment-approved": "Pagamento Aprovado",
    "ready-for-handling": "Pronto para o manuseio",
    "handling": "Preparando Entrega",
    "invoiced": "Faturado",
    "canceled": "Cancelado",
}


def iso(ts: float) -> str:
    """A time.time() as VTEX writes moments: UTC with microseconds and a Z."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def build_order(
    order_id: str,
    items: list[dict[str, Any]],
    *,
    state: str,
    carrier: str,
    warehouse_id: str,
    value_cents: int | None,
    account: str,
    now: float,
) -> dict[str, Any]:
    """A VTEX order as GET /api/oms/pvt/orders/{orderId} answers it (the fields of its 200
    schema that an integration reads, with plausible values for the rest)."""
    lines: list[dict[str, Any]] = []
    for item in items:
        sku = str(item["sku"])
        quantity, price = item["quantity"], item["price"]
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
            raise ValueError(f"item {sku}: quantity must be a positive integer, got {quantity!r}")
        if not isinstance(price, int) or isinstance(price, bool) or price < 0:
            raise ValueError(f"item {sku}: price must be integer cents, got {price!r}")
        lines.append({**item, "sku": sku})
    if not lines:
        raise ValueError("an order needs at least one item")
    items_total = sum(line["price"] * line["quantity"] for line in lines)
    value = items_total if value_cents is None else value_cents
    difference = value - items_total
    created = iso(now)
    estimate = iso(now + timedelta(days=5).total_seconds())
    sequence = "".join(c for c in order_id if c.isdigit())[-7:] or "1000001"
    transaction_id = uuid.uuid5(uuid.NAMESPACE_URL, f"vtex:{account}:{order_id}").hex.upper()
    address = {
        "addressType": "residential",
        "receiverName": "Maria Silva",
        "addressId": "a1b2c3d4",
        "versionId": None,
        "entityId": None,
        "postalCode": "22250-040",
        "city": "Rio de Janeiro",
        "state": "RJ",
        "country": "BRA",
        "street": "Praia de Botafogo",
        "number": "300",
        "neighborhood": "Botafogo",
        "complement": "3º andar",
        "reference": None,
        "geoCoordinates": [-43.18, -22.94],
    }
    order_items = []
    logistics = []
    for index, line in enumerate(lines):
        sku, quantity, price = line["sku"], line["quantity"], line["price"]
        name = str(line.get("name") or f"Product {sku}")
        ref_id = str(line.get("refId") or f"REF-{sku}")
        selling = int(line.get("sellingPrice", price))
        order_items.append(
            {
                "uniqueId": uuid.uuid5(uuid.NAMESPACE_URL, f"{order_id}/{index}").hex.upper(),
                "id": sku,
                "productId": f"P{sku}",
                "ean": None,
                "lockId": f"00-{order_id}",
                "itemAttachment": {"content": {}, "name": None},
                "attachments": [],
                "quantity": quantity,
                "seller": "1",
                "name": name,
                "refId": ref_id,
                "price": price,
                "listPrice": int(line.get("listPrice", price)),
                "manualPrice": None,
                "priceTags": [],
                "imageUrl": f"https://{account}.vteximg.com.br/arquivos/ids/{sku}-55-55/{sku}.jpg",
                "detailUrl": f"/product-{sku}/p",
                "components": [],
                "bundleItems": [],
                "params": [],
                "offerings": [],
                "attachmentOfferings": [],
                "sellerSku": sku,
                "priceValidUntil": None,
                "commission": 0,
                "tax": 0,
                "preSaleDate": None,
                "additionalInfo": {
                    "brandName": "Acme",
                    "brandId": "2000000",
                    "categoriesIds": "/1/",
                    "productClusterId": "",
                    "commercialConditionId": "1",
                    "offeringInfo": None,
                    "offeringType": None,
                    "offeringTypeId": None,
                },
                "measurementUnit": "un",
                "unitMultiplier": 1,
                "sellingPrice": selling,
                "isGift": False,
                "shippingPrice": None,
                "rewardValue": 0,
                "freightCommission": 0,
                "priceDefinitions": {
                    "sellingPrices": [{"value": selling, "quantity": quantity}],
                    "calculatedSellingPrice": selling,
                    "total": selling * quantity,
                },
                "taxCode": None,
                "parentItemIndex": None,
                "parentAssemblyBinding": None,
                "callCenterOperator": None,
                "serialNumbers": None,
                "assemblies": [],
                "costPrice": price,
            }
        )
        logistics.append(
            {
                "itemIndex": index,
                "selectedSla": "Normal",
                "lockTTL": "10d",
                "price": 0,
                "listPrice": 0,
                "sellingPrice": 0,
                "deliveryWindow": None,
                "deliveryCompany": carrier,
                "shippingEstimate": "5bd",
                "shippingEstimateDate": estimate,
                "slas": [
                    {
                        "id": "Normal",
                        "name": "Normal",
                        "shippingEstimate": "5bd",
                        "deliveryWindow": None,
                        "price": 0,
                        "selectedDeliveryChannel": "delivery",
                        "pickupStoreInfo": {
                            "additionalInfo": None,
                            "address": None,
                            "dockId": None,
                            "friendlyName": None,
                            "isPickupStore": False,
                        },
                        "polygonName": None,
                        "lockTTL": "10d",
                        "pickupPointId": "",
                        "transitTime": "5bd",
                        "pickupDistance": 0,
                    }
                ],
                "shipsTo": ["BRA"],
                "deliveryIds": [
                    {
                        "courierId": "1",
                        "courierName": carrier,
                        "dockId": "1",
                        "quantity": quantity,
                        "warehouseId": warehouse_id,
                        "accountCarrierName": account,
                        "kitItemDetails": [],
                    }
                ],
                "deliveryChannels": [{"id": "delivery", "stockBalance": 0}],
                "selectedDeliveryChannel": "delivery",
                "pickupStoreInfo": {
                    "additionalInfo": None,
                    "address": None,
                    "dockId": None,
                    "friendlyName": None,
                    "isPickupStore": False,
                },
                "addressId": address["addressId"],
                "versionId": None,
                "entityId": None,
                "polygonName": None,
                "pickupPointId": None,
                "transitTime": "5bd",
            }
        )
    return {
        "orderId": order_id,
        "sequence": sequence,
        "marketplaceOrderId": "",
        "marketplaceServicesEndpoint": f"http://oms.vtexinternal.com.br/api/oms?an={account}",
        "sellerOrderId": f"00-{order_id}",
        "origin": "Marketplace",
        "affiliateId": "",
        "salesChannel": "1",
        "merchantName": None,
        "status": state,
        "workflowIsInError": False,
        "statusDescription": STATUS_DESCRIPTIONS.get(state, state),
        "value": value,
        "creationDate": created,
        "lastChange": created,
        "orderGroup": order_id.rsplit("-", 1)[0],
        "followUpEmail": "7bf3a59bbc56402c810bda9521ba449e@ct.vtex.com.br",
        "lastMessage": None,
        "hostname": account,
        "isCompleted": True,
        "roundingError": 0,
        "orderFormId": uuid.uuid5(uuid.NAMESPACE_URL, f"orderform:{order_id}").hex,
        "allowCancellation": True,
        "allowEdition": False,
        "isCheckedIn": False,
        "authorizedDate": None if state in UNAUTHORIZED_STATES else created,
        "invoicedDate": None,
        "cancelReason": None,
        "checkedInPickupPointId": None,
        "totals": [
            {"id": "Items", "name": "Total dos Itens", "value": items_total},
            {"id": "Discounts", "name": "Total dos Descontos", "value": min(difference, 0)},
            {"id": "Shipping", "name": "Total do Frete", "value": max(difference, 0)},
            {"id": "Tax", "name": "Total da Taxa", "value": 0},
        ],
        "sellers": [
            {
                "id": "1",
                "name": account,
                "logo": None,
                "fulfillmentEndpoint": f"http://fulfillment.vtexcommerce.com.br/api/fulfillment?an={account}",
            }
        ],
        "clientPreferencesData": {"locale": "pt-BR", "optinNewsLetter": False},
        "cancellationData": None,
        "taxData": None,
        "subscriptionData": None,
        "itemMetadata": {
            "Items": [
                {
                    "Id": item["id"],
                    "Seller": "1",
                    "Name": item["name"],
                    "SkuName": item["name"],
                    "ProductId": item["productId"],
                    "RefId": item["refId"],
                    "Ean": "",
                    "ImageUrl": item["imageUrl"],
                    "DetailUrl": item["detailUrl"],
                    "AssemblyOptions": [],
                }
                for item in order_items
            ]
        },
        "marketplace": {
            "baseURL": f"http://oms.vtexinternal.com.br/api/oms?an={account}",
            "isCertified": None,
            "name": account,
        },
        "storePreferencesData": {
            "countryCode": "BRA",
            "currencyCode": "BRL",
            "currencyFormatInfo": {
                "CurrencyDecimalDigits": 2,
                "CurrencyDecimalSeparator": ",",
                "CurrencyGroupSeparator": ".",
                "CurrencyGroupSize": 3,
                "StartsWithCurrencySymbol": True,
            },
            "currencyLocale": 1046,
            "currencySymbol": "R$",
            "timeZone": "E. South America Standard Time",
        },
        "customData": None,
        "commercialConditionData": None,
        "openTextField": None,
        "invoiceData": None,
        "changesAttachment": None,
        "callCenterOperatorData": None,
        "packageAttachment": {"packages": []},
        "paymentData": {
            "giftCards": [],
            "transactions": [
                {
                    "isActive": True,
                    "transactionId": transaction_id,
                    "merchantName": account.upper(),
                    "payments": [
                        {
                            "id": transaction_id[:16],
                            "paymentSystem": "2",
                            "paymentSystemName": "Visa",
                            "value": value,
                            "installments": 1,
                            "referenceValue": value,
                            "cardHolder": None,
                            "cardNumber": None,
                            "firstDigits": "411111",
                            "lastDigits": "1111",
                            "cvv2": None,
                            "expireMonth": None,
                            "expireYear": None,
                            "url": None,
                            "giftCardId": None,
                            "giftCardName": None,
                            "giftCardCaption": None,
                            "redemptionCode": None,
                            "group": "creditCard",
                            "tid": transaction_id[:12],
                            "dueDate": None,
                            "connectorResponses": {
                                "Message": None,
                                "tid": transaction_id[:12],
                                "authorizationId": "123456",
                                "status": "authorized",
                                "delayToAutoSettle": 0,
                                "ReturnCode": None,
                                "nsu": "654321",
                                "code": "0",
                            },
                        }
                    ],
                }
            ],
        },
        "shippingData": {
            "id": "shippingData",
            "address": address,
            "logisticsInfo": logistics,
            "trackingHints": None,
            "selectedAddresses": [address],
            "contactInformation": [],
        },
        "ratesAndBenefitsData": {"id": "ratesAndBenefitsData", "rateAndBenefitsIdentifiers": []},
        "marketingData": None,
        "giftRegistryData": None,
        "clientProfileData": {
            "id": "clientProfileData",
            "email": "maria.silva@example.com",
            "firstName": "Maria",
            "lastName": "Silva",
            "documentType": "cpf",
            "document": "12345678909",
            "phone": "+5521999999999",
            "corporateName": None,
            "tradeName": None,
            "corporateDocument": None,
            "stateInscription": None,
            "corporatePhone": None,
            "isCorporate": False,
            "userProfileId": uuid.uuid5(uuid.NAMESPACE_URL, "maria.silva").hex,
            "userProfileVersion": None,
            "customerClass": None,
            "customerCode": None,
        },
        "items": order_items,
        "marketplaceItems": [],
        "authorizationPolicyData": [],
    }
