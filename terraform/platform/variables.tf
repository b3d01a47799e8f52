variable "environment" {
  type        = string
  description = "Environment name, part of every resource name (dev, prod, ...)."
  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,7}$", var.environment))
    error_message = "The environment must be 2-8 lower-case letters or digits, starting with a letter."
  }
}

variable "subscription_id" {
  type        = string
  description = "Azure subscription that holds the platform."
  validation {
    condition     = can(regex("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", var.subscription_id))
    error_message = "The subscription_id must be a GUID."
  }
}

variable "tenant_id" {
  type        = string
  description = "Azure AD (Entra ID) tenant of the users, the app registration and the identities."
  validation {
    condition     = can(regex("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", var.tenant_id))
    error_message = "The tenant_id must be a GUID."
  }
}

variable "location" {
  type        = string
  description = "Azure region of every resource, e.g. eastus. Pick one with three availability zones for prod."
  validation {
    condition     = can(regex("^[a-z]+[a-z0-9]*$", var.location))
    error_message = "The location must be a region name such as eastus (lower case, no spaces)."
  }
}

variable "name_suffix" {
  type        = string
  description = "Short suffix that makes the globally unique names (storage, registry, vault) unique, e.g. gj01."
  validation {
    condition     = can(regex("^[a-z0-9]{2,6}$", var.name_suffix))
    error_message = "The name_suffix must be 2-6 lower-case letters or digits."
  }
}

variable "address_space" {
  type        = string
  description = "CIDR of the virtual network, at least a /16; subnets are carved from it (aks /21, postgres, private endpoints, aml)."
  validation {
    condition     = can(cidrhost(var.address_space, 0)) && tonumber(split("/", var.address_space)[1]) <= 16
    error_message = "The address_space must be an IPv4 CIDR of /16 or larger."
  }
}

variable "kubernetes_version" {
  type        = string
  description = "AKS Kubernetes version (major.minor), e.g. 1.30; patches follow the automatic upgrade channel."
  validation {
    condition     = can(regex("^1\\.[0-9]{2}$", var.kubernetes_version))
    error_message = "The kubernetes_version must look like 1.30."
  }
}

variable "aks_sku_tier" {
  type        = string
  description = "AKS control plane tier: Free (no SLA) or Standard (uptime SLA)."
  default     = "Standard"
  validation {
    condition     = contains(["Free", "Standard", "Premium"], var.aks_sku_tier)
    error_message = "The aks_sku_tier must be Free, Standard or Premium."
  }
}

variable "system_pool" {
  type = object({
    vm_size   = string
    min_count = number
    max_count = number
  })
  description = "System node pool (critical add-ons only): VM size and autoscaler bounds."
  validation {
    condition     = var.system_pool.min_count >= 1 && var.system_pool.max_count >= var.system_pool.min_count
    error_message = "The system_pool needs min_count >= 1 and max_count >= min_count."
  }
}

variable "user_pool" {
  type = object({
    vm_size   = string
    min_count = number
    max_count = number
  })
  description = "User node pool where the Roastery pods run (label roastery.io/pool=user): VM size and autoscaler bounds."
  validation {
    condition     = var.user_pool.min_count >= 1 && var.user_pool.max_count >= var.user_pool.min_count
    error_message = "The user_pool needs min_count >= 1 and max_count >= min_count."
  }
}

variable "zones" {
  type        = list(string)
  description = "Availability zones for node pools and PostgreSQL HA; empty where the region has none."
  default     = []
  validation {
    condition     = alltrue([for z in var.zones : contains(["1", "2", "3"], z)])
    error_message = "The zones must be drawn from \"1\", \"2\" and \"3\"."
  }
}

variable "admin_group_object_ids" {
  type        = list(string)
  description = "Azure AD groups that administer the AKS cluster (Azure RBAC; local accounts are disabled)."
}

variable "operator_ip_ranges" {
  type        = list(string)
  description = "Public CIDRs allowed through the Key Vault and storage firewalls (where terraform runs)."
  default     = []
  validation {
    condition     = alltrue([for c in var.operator_ip_ranges : can(cidrhost(c, 0))])
    error_message = "Every operator_ip_ranges entry must be a CIDR such as 203.0.113.0/24."
  }
}

variable "postgres_version" {
  type        = string
  description = "PostgreSQL major version of the flexible server."
  default     = "16"
  validation {
    condition     = contains(["14", "15", "16"], var.postgres_version)
    error_message = "The postgres_version must be 14, 15 or 16."
  }
}

variable "postgres_sku" {
  type        = string
  description = "Flexible server SKU, e.g. B_Standard_B2s (dev) or GP_Standard_D4ds_v5 (prod)."
  validation {
    condition     = can(regex("^(B|GP|MO)_Standard_", var.postgres_sku))
    error_message = "The postgres_sku must start with B_Standard_, GP_Standard_ or MO_Standard_."
  }
}

variable "postgres_storage_mb" {
  type        = number
  description = "Storage of the flexible server in MB (one of Azure's sizes, 32768 and up)."
  default     = 32768
  validation {
    condition     = contains([32768, 65536, 131072, 262144, 524288, 1048576, 2097152, 4193280, 4194304, 8388608, 16777216, 33553408], var.postgres_storage_mb)
    error_message = "The postgres_storage_mb must be one of the flexible server's storage sizes (32768, 65536, 131072, ...)."
  }
}

variable "postgres_ha" {
  type        = bool
  description = "Zone-redundant high availability (a hot standby in another zone); needs a GP or MO SKU."
  default     = false
}

variable "postgres_backup_retention_days" {
  type        = number
  description = "Point-in-time restore window of the flexible server, in days."
  default     = 7
  validation {
    condition     = var.postgres_backup_retention_days >= 7 && var.postgres_backup_retention_days <= 35
    error_message = "The postgres_backup_retention_days must be from 7 to 35."
  }
}

variable "postgres_geo_redundant_backup" {
  type        = bool
  description = "Keep backups in the paired region too (can only be chosen when the server is created)."
  default     = false
}

variable "postgres_admin_login" {
  type        = string
  description = "Administrator login of the flexible server (Roastery connects with it; see docs/operations.md)."
  default     = "roastery"
  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{2,62}$", var.postgres_admin_login)) && !contains(["admin", "administrator", "root", "postgres", "azure_superuser", "azure_pg_admin", "guest", "public"], var.postgres_admin_login)
    error_message = "The postgres_admin_login must be 3-63 lower-case letters, digits or _, and not a reserved name."
  }
}

variable "postgres_admin_password" {
  type        = string
  description = "Administrator password of the flexible server. No default: pass TF_VAR_postgres_admin_password from a secret store."
  sensitive   = true
  validation {
    condition     = length(var.postgres_admin_password) >= 16 && length(var.postgres_admin_password) <= 128
    error_message = "The postgres_admin_password must be 16 to 128 characters."
  }
}

variable "storage_replication" {
  type        = string
  description = "Replication of the artifacts storage account: LRS (dev), ZRS or GZRS (prod)."
  default     = "ZRS"
  validation {
    condition     = contains(["LRS", "ZRS", "GRS", "GZRS", "RAGZRS"], var.storage_replication)
    error_message = "The storage_replication must be LRS, ZRS, GRS, GZRS or RAGZRS."
  }
}

variable "blob_soft_delete_days" {
  type        = number
  description = "Days a deleted or overwritten artifact blob (and a deleted container) can be restored."
  default     = 14
  validation {
    condition     = var.blob_soft_delete_days >= 1 && var.blob_soft_delete_days <= 365
    error_message = "The blob_soft_delete_days must be from 1 to 365."
  }
}

variable "acr_sku" {
  type        = string
  description = "Container registry SKU (Premium for zone redundancy and private link)."
  default     = "Standard"
  validation {
    condition     = contains(["Basic", "Standard", "Premium"], var.acr_sku)
    error_message = "The acr_sku must be Basic, Standard or Premium."
  }
}

variable "key_vault_purge_protection" {
  type        = bool
  description = "Purge protection on the Key Vault (cannot be turned off again; on in prod)."
  default     = true
}

variable "log_retention_days" {
  type        = number
  description = "Retention of the Log Analytics workspace in days."
  default     = 30
  validation {
    condition     = var.log_retention_days >= 30 && var.log_retention_days <= 730
    error_message = "The log_retention_days must be from 30 to 730."
  }
}

variable "namespace" {
  type        = string
  description = "Kubernetes namespace of the Roastery pods (deploy/k8s overlay); part of the federated credential subjects."
  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.namespace))
    error_message = "The namespace must be a DNS label."
  }
}

variable "portal_hostname" {
  type        = string
  description = "Public host name of the portal and API (the Ingress host), e.g. roastery.globojava.example."
  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", var.portal_hostname))
    error_message = "The portal_hostname must be a DNS name without scheme or path."
  }
}

variable "server_credential" {
  type        = string
  description = "How the server's own ARM and Blob clients sign in: workload_identity (default: each pod's managed identity through AKS workload identity, no secret, Blob by Entra ID token) or client_secret (an executor app registration with a rotated secret, Blob by account key)."
  default     = "workload_identity"
  validation {
    condition     = contains(["workload_identity", "client_secret"], var.server_credential)
    error_message = "The server_credential must be workload_identity or client_secret."
  }
}

variable "executor_credential_rotation_days" {
  type        = number
  description = "With server_credential = client_secret: days after which terraform replaces the executor's client secret (each expires 30 days after its planned rotation)."
  default     = 90
  validation {
    condition     = var.executor_credential_rotation_days >= 7 && var.executor_credential_rotation_days <= 365
    error_message = "The executor_credential_rotation_days must be from 7 to 365."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags on every resource that takes them."
  default     = {}
}
