# PostgreSQL flexible server with private access only: it lives in a
# delegated subnet and its name resolves through a private DNS zone linked to
# the network, so there is no public endpoint at all.
resource "azurerm_private_dns_zone" "postgres" {
  name                = "${local.name}.private.postgres.database.azure.com"
  resource_group_name = azurerm_resource_group.this.name
  tags                = local.tags
}

resource "azurerm_private_dns_zone_virtual_network_link" "postgres" {
  name                  = "postgres"
  resource_group_name   = azurerm_resource_group.this.name
  private_dns_zone_name = azurerm_private_dns_zone.postgres.name
  virtual_network_id    = azurerm_virtual_network.this.id
}

resource "azurerm_postgresql_flexible_server" "this" {
  name                          = "psql-${local.name}-${var.name_suffix}"
  location                      = azurerm_resource_group.this.location
  resource_group_name           = azurerm_resource_group.this.name
  version                       = var.postgres_version
  sku_name                      = var.postgres_sku
  storage_mb                    = var.postgres_storage_mb
  auto_grow_enabled             = true
  delegated_subnet_id           = azurerm_subnet.postgres.id
  private_dns_zone_id           = azurerm_private_dns_zone.postgres.id
  public_network_access_enabled = false
  administrator_login           = var.postgres_admin_login
  administrator_password        = var.postgres_admin_password
  zone                          = length(var.zones) > 0 ? var.zones[0] : null

  # Daily snapshots plus WAL: point-in-time restore anywhere in the window
  # (docs/operations.md, "Backup and restore").
  backup_retention_days        = var.postgres_backup_retention_days
  geo_redundant_backup_enabled = var.postgres_geo_redundant_backup

  dynamic "high_availability" {
    for_each = var.postgres_ha ? [1] : []
    content {
      mode                      = "ZoneRedundant"
      standby_availability_zone = length(var.zones) > 1 ? var.zones[1] : null
    }
  }

  maintenance_window {
    day_of_week  = 0
    start_hour   = 3
    start_minute = 0
  }

  tags = local.tags

  depends_on = [azurerm_private_dns_zone_virtual_network_link.postgres]

  lifecycle {
    # Azure moves the primary to the standby's zone on failover.
    ignore_changes = [zone, high_availability[0].standby_availability_zone]
    precondition {
      condition     = !var.postgres_ha || !startswith(var.postgres_sku, "B_")
      error_message = "High availability needs a General Purpose or Memory Optimized SKU, not ${var.postgres_sku}."
    }
  }
}

resource "azurerm_postgresql_flexible_server_database" "roastery" {
  name      = "roastery"
  server_id = azurerm_postgresql_flexible_server.this.id
  charset   = "UTF8"
  collation = "en_US.utf8"
}

# Roastery's queries show up in Query Store; connections are logged.
resource "azurerm_postgresql_flexible_server_configuration" "log_connections" {
  name      = "log_connections"
  server_id = azurerm_postgresql_flexible_server.this.id
  value     = "on"
}

locals {
  # libpq keyword/value string: quote the password, escaping \ and '.
  pg_password_quoted = replace(replace(var.postgres_admin_password, "\\", "\\\\"), "'", "\\'")
  database_url = join(" ", [
    "host=${azurerm_postgresql_flexible_server.this.fqdn}",
    "port=5432",
    "dbname=${azurerm_postgresql_flexible_server_database.roastery.name}",
    "user=${var.postgres_admin_login}",
    "password='${local.pg_password_quoted}'",
    "sslmode=require",
    "connect_timeout=10",
    "application_name=roastery",
  ])
}
