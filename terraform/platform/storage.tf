# Artifacts (datasets, run outputs, models) and the Terraform state of the
# compute the server creates. Pods reach Blob through a private endpoint.
resource "azurerm_storage_account" "this" {
  name                            = substr(replace("st${local.compact}", "-", ""), 0, 24)
  location                        = azurerm_resource_group.this.location
  resource_group_name             = azurerm_resource_group.this.name
  account_kind                    = "StorageV2"
  account_tier                    = "Standard"
  account_replication_type        = var.storage_replication
  min_tls_version                 = "TLS1_2"
  https_traffic_only_enabled      = true
  allow_nested_items_to_be_public = false
  # With workload identity the server sends Entra ID tokens; the key stays on
  # for server_credential = client_secret and for the azurerm state backend of
  # user compute, which lists the account key unless told use_azuread_auth.
  shared_access_key_enabled = true

  blob_properties {
    versioning_enabled = true
    delete_retention_policy {
      days = var.blob_soft_delete_days
    }
    container_delete_retention_policy {
      days = var.blob_soft_delete_days
    }
  }

  network_rules {
    default_action             = "Deny"
    bypass                     = ["AzureServices"]
    ip_rules                   = [for c in var.operator_ip_ranges : replace(c, "/32", "")]
    virtual_network_subnet_ids = [azurerm_subnet.aml.id]
  }

  tags = local.tags
}

# Through ARM (storage_account_id), so terraform needs no data-plane access.
resource "azurerm_storage_container" "artifacts" {
  name                  = "artifacts"
  storage_account_id    = azurerm_storage_account.this.id
  container_access_type = "private"
}

resource "azurerm_storage_container" "tfstate" {
  name                  = "tfstate"
  storage_account_id    = azurerm_storage_account.this.id
  container_access_type = "private"
}

resource "azurerm_private_endpoint" "blob" {
  name                = "pe-${local.name}-blob"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  subnet_id           = azurerm_subnet.private_endpoints.id

  private_service_connection {
    name                           = "blob"
    private_connection_resource_id = azurerm_storage_account.this.id
    subresource_names              = ["blob"]
    is_manual_connection           = false
  }

  private_dns_zone_group {
    name                 = "blob"
    private_dns_zone_ids = [azurerm_private_dns_zone.blob.id]
  }

  tags = local.tags
}

resource "azurerm_container_registry" "this" {
  name                          = substr("acr${local.compact}", 0, 50)
  location                      = azurerm_resource_group.this.location
  resource_group_name           = azurerm_resource_group.this.name
  sku                           = var.acr_sku
  admin_enabled                 = false
  anonymous_pull_enabled        = false
  zone_redundancy_enabled       = var.acr_sku == "Premium" && length(var.zones) > 0
  public_network_access_enabled = true
  tags                          = local.tags
}
