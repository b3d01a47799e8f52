variable "name" {
  type        = string
  nullable    = false
  description = "Name of the compute cluster inside the workspace: 3 to 16 characters, letters, digits and hyphens, starting with a letter and ending with a letter or digit."

  validation {
    # The ARM API accepts ^[a-zA-Z][a-zA-Z0-9-]{1,30}[a-zA-Z0-9]$ (3..32);
    # the Azure ML SDK limits cluster names to 16 characters, which is what
    # Roastery enforces.
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9-]{1,14}[a-zA-Z0-9]$", var.name))
    error_message = "The name must be 3 to 16 characters of letters, digits and hyphens, start with a letter and end with a letter or digit."
  }
}

variable "location" {
  type        = string
  nullable    = false
  description = "Azure region of the cluster's nodes, e.g. westeurope. Usually the workspace's region."

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9 ]*[a-zA-Z0-9]$", var.location))
    error_message = "The location must be an Azure region name such as westeurope or \"West Europe\"."
  }
}

variable "workspace_id" {
  type        = string
  nullable    = false
  description = "ARM id of the Azure Machine Learning workspace (Microsoft.MachineLearningServices/workspaces) the cluster belongs to."

  validation {
    condition     = can(regex("(?i)^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\\.MachineLearningServices/workspaces/[^/]+$", var.workspace_id))
    error_message = "The workspace_id must look like /subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.MachineLearningServices/workspaces/<name>."
  }
}

variable "vm_size" {
  type        = string
  nullable    = false
  description = "VM size of every node, e.g. Standard_DS3_v2. Availability depends on the region and the subscription's quota."

  validation {
    condition     = can(regex("(?i)^(standard|basic)_[a-z0-9_-]+$", var.vm_size))
    error_message = "The vm_size must be an Azure VM size name such as Standard_DS3_v2."
  }
}

variable "vm_priority" {
  type        = string
  nullable    = false
  description = "VM priority of the nodes: Dedicated, or LowPriority (cheaper, can be pre-empted)."

  validation {
    condition     = contains(["Dedicated", "LowPriority"], var.vm_priority)
    error_message = "The vm_priority must be \"Dedicated\" or \"LowPriority\"."
  }
}

variable "min_nodes" {
  type        = number
  nullable    = false
  description = "Minimum number of nodes kept running; 0 lets the cluster scale to zero when idle."

  validation {
    condition     = var.min_nodes >= 0 && floor(var.min_nodes) == var.min_nodes
    error_message = "The min_nodes must be a whole number >= 0."
  }
}

variable "max_nodes" {
  type        = number
  nullable    = false
  description = "Maximum number of nodes the cluster scales out to; must be >= min_nodes (checked by a precondition on the cluster)."

  validation {
    condition     = var.max_nodes >= 1 && floor(var.max_nodes) == var.max_nodes
    error_message = "The max_nodes must be a whole number >= 1."
  }
}

variable "idle_minutes" {
  type        = number
  nullable    = false
  description = "Minutes a node stays idle before the cluster scales down, 0 to 10080 (one week); passed to Azure as the ISO-8601 duration PT<n>M."

  validation {
    condition     = var.idle_minutes >= 0 && var.idle_minutes <= 10080 && floor(var.idle_minutes) == var.idle_minutes
    error_message = "The idle_minutes must be a whole number between 0 and 10080."
  }
}

variable "subnet_id" {
  type        = string
  default     = null
  description = "Optional ARM id of a subnet (Microsoft.Network/virtualNetworks/subnets) to place the nodes in; null for no virtual network."

  validation {
    condition     = var.subnet_id == null || can(regex("(?i)^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\\.Network/virtualNetworks/[^/]+/subnets/[^/]+$", var.subnet_id))
    error_message = "The subnet_id must be null or the ARM id of a subnet: /subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.Network/virtualNetworks/<vnet>/subnets/<subnet>."
  }
}

variable "tags" {
  type        = map(string)
  default     = {}
  nullable    = false
  description = "Tags set on the cluster. null is treated as {}."

  validation {
    condition     = length(var.tags) <= 50 && alltrue([for k, v in var.tags : length(k) >= 1 && length(k) <= 512 && length(v) <= 256])
    error_message = "There may be at most 50 tags, with keys of 1 to 512 characters and values of at most 256 characters (Azure limits)."
  }
}
