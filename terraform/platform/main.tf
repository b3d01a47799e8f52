# Everything Roastery itself runs on, for one environment. The compute that
# users request is not here: the server creates it through terraform/modules.

data "azurerm_client_config" "current" {}

locals {
  name = "roastery-${var.environment}"
  # Storage accounts and registries allow neither dashes nor more than 24 characters.
  compact = "roastery${var.environment}${var.name_suffix}"
  tags    = merge({ application = "roastery", environment = var.environment, managed_by = "terraform" }, var.tags)

  subnets = {
    aks               = cidrsubnet(var.address_space, 5, 0) # /21 of a /16: nodes (pods use the overlay)
    postgres          = cidrsubnet(var.address_space, 8, 8) # delegated to the flexible server
    private_endpoints = cidrsubnet(var.address_space, 8, 9) # Blob and Key Vault
    aml               = cidrsubnet(var.address_space, 8, 10) # Azure ML compute clusters
  }

  # Service accounts of deploy/k8s/base/serviceaccounts.yaml.
  serve_subject  = "system:serviceaccount:${var.namespace}:roastery-api"
  worker_subject = "system:serviceaccount:${var.namespace}:roastery-worker"
}

resource "azurerm_resource_group" "this" {
  name     = "rg-${local.name}"
  location = var.location
  tags     = local.tags
}

resource "azurerm_virtual_network" "this" {
  name                = "vnet-${local.name}"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  address_space       = [var.address_space]
  tags                = local.tags
}

resource "azurerm_subnet" "aks" {
  name                 = "snet-aks"
  resource_group_name  = azurerm_resource_group.this.name
  virtual_network_name = azurerm_virtual_network.this.name
  address_prefixes     = [local.subnets.aks]
}

resource "azurerm_subnet" "postgres" {
  name                 = "snet-postgres"
  resource_group_name  = azurerm_resource_group.this.name
  virtual_network_name = azurerm_virtual_network.this.name
  address_prefixes     = [local.subnets.postgres]

  delegation {
    name = "postgres-flexible"
    service_delegation {
      name    = "Microsoft.DBforPostgreSQL/flexibleServers"
      actions = ["Microsoft.Network/virtualNetworks/subnets/join/action"]
    }
  }
}

resource "azurerm_subnet" "private_endpoints" {
  name                 = "snet-private-endpoints"
  resource_group_name  = azurerm_resource_group.this.name
  virtual_network_name = azurerm_virtual_network.this.name
  address_prefixes     = [local.subnets.private_endpoints]
}

resource "azurerm_subnet" "aml" {
  name                 = "snet-aml"
  resource_group_name  = azurerm_resource_group.this.name
  virtual_network_name = azurerm_virtual_network.this.name
  address_prefixes     = [local.subnets.aml]
  # Compute clusters reach the workspace storage over the backbone.
  service_endpoints = ["Microsoft.Storage"]
}

# Private DNS for the private endpoints, resolvable from the cluster.
resource "azurerm_private_dns_zone" "blob" {
  name                = "privatelink.blob.core.windows.net"
  resource_group_name = azurerm_resource_group.this.name
  tags                = local.tags
}

resource "azurerm_private_dns_zone" "vault" {
  name                = "privatelink.vaultcore.azure.net"
  resource_group_name = azurerm_resource_group.this.name
  tags                = local.tags
}

resource "azurerm_private_dns_zone_virtual_network_link" "blob" {
  name                  = "blob"
  resource_group_name   = azurerm_resource_group.this.name
  private_dns_zone_name = azurerm_private_dns_zone.blob.name
  virtual_network_id    = azurerm_virtual_network.this.id
}

resource "azurerm_private_dns_zone_virtual_network_link" "vault" {
  name                  = "vault"
  resource_group_name   = azurerm_resource_group.this.name
  private_dns_zone_name = azurerm_private_dns_zone.vault.name
  virtual_network_id    = azurerm_virtual_network.this.id
}
