"""Publishing of products: COGs, quicklook and STAC item in object storage, rows in PostGIS."""

from banet_ops.publish.publisher import PublishResult, product_keys, product_prefix, publish_product, validate_product

__all__ = ["PublishResult", "product_keys", "product_prefix", "publish_product", "validate_product"]
