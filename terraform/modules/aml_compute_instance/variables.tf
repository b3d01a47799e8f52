variable "name" {
  type        = string
  nullable    = false
  description = "Name of the compute instance, unique in the Azure region: 4 to 24 characters, letters, digits and hyphens, starting with a letter, ending with a letter or digit, and not ending in a hyphen followed by digits (e.g. nb-1)."

  validation {
    # azurerm 4.14.0 checks ^[a-zA-Z][a-zA-Z0-9-]{3,24}$ (so 4 characters at
    # least); the service caps the length at 24 and rejects names ending in
    # '-<digits>'.
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9-]{2,22}[a-zA-Z0-9]$", var.name)) && !can(regex("-[0-9]+$", var.name))
    error_message = "The name must be 4 to 24 characters of letters, digits and hyphens, start with a letter, end with a letter or digit, and not end with a hyphen followed by digits."
  }
}

variable "location" {
  type        = string
  nullable    = false
  description = "Azure region of the workspace. Accepted for a uniform interface with the other modules: compute instances always run in the workspace's region, and azurerm 4.x has no location argument for them."

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9 ]*[a-zA-Z0-9]$", var.location))
    error_message = "The location must be an Azure region name such as westeurope or \"West Europe\"."
  }
}

variable "workspace_id" {
  type        = string
  nullable    = false
  description = "ARM id of the Azure Machine Learning workspace (Microsoft.MachineLearningServices/workspaces) the instance belongs to."

  validation {
    condition     = can(regex("(?i)^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\\.MachineLearningServices/workspaces/[^/]+$", var.workspace_id))
    error_message = "The workspace_id must look like /subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.MachineLearningServices/workspaces/<name>."
  }
}

variable "vm_size" {
  type        = string
  nullable    = false
  description = "VM size of the instance, e.g. Standard_DS3_v2 (case-insensitive)."

  validation {
    condition     = can(regex("(?i)^(standard|basic)_[a-z0-9_-]+$", var.vm_size))
    error_message = "The vm_size must be an Azure VM size name such as Standard_DS3_v2."
  }
}

variable "subnet_id" {
  type        = string
  default     = null
  description = "Optional ARM id of a subnet (Microsoft.Network/virtualNetworks/subnets) to place the instance in; null for no virtual network."

  validation {
    condition     = var.subnet_id == null || can(regex("(?i)^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\\.Network/virtualNetworks/[^/]+/subnets/[^/]+$", var.subnet_id))
    error_message = "The subnet_id must be null or the ARM id of a subnet: /subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.Network/virtualNetworks/<vnet>/subnets/<subnet>."
  }
}

variable "assigned_user_object_id" {
  type        = string
  default     = null
  description = "Optional Entra ID object id of the user the instance is created for (assign_to_user); set together with assigned_user_tenant_id, or leave both null."

  validation {
    condition     = var.assigned_user_object_id == null || can(regex("^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", var.assigned_user_object_id))
    error_message = "The assigned_user_object_id must be null or a GUID."
  }
}

variable "assigned_user_tenant_id" {
  type        = string
  default     = null
  description = "Optional Entra ID tenant id of the assigned user; set together with assigned_user_object_id, or leave both null."

  validation {
    condition     = var.assigned_user_tenant_id == null || can(regex("^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", var.assigned_user_tenant_id))
    error_message = "The assigned_user_tenant_id must be null or a GUID."
  }
}

variable "tags" {
  type        = map(string)
  default     = {}
  nullable    = false
  description = "Tags set on the instance. null is treated as {}."

  validation {
    condition     = length(var.tags) <= 50 && alltrue([for k, v in var.tags : length(k) >= 1 && length(k) <= 512 && length(v) <= 256])
    error_message = "There may be at most 50 tags, with keys of 1 to 512 characters and values of at most 256 characters (Azure limits)."
  }
}
