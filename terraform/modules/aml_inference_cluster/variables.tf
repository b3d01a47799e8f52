variable "name" {
  type        = string
  nullable    = false
  description = "Name of the inference compute in the workspace, 3 to 16 characters (letters, digits, hyphens; starts with a letter, ends with a letter or digit). The AKS cluster is named <name>-aks and uses <name> as its DNS prefix."

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9-]{1,14}[a-zA-Z0-9]$", var.name))
    error_message = "The name must be 3 to 16 characters of letters, digits and hyphens, start with a letter and end with a letter or digit."
  }
}

variable "location" {
  type        = string
  nullable    = false
  description = "Azure region of the AKS cluster and of the inference compute, e.g. westeurope."

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9 ]*[a-zA-Z0-9]$", var.location))
    error_message = "The location must be an Azure region name such as westeurope or \"West Europe\"."
  }
}

variable "resource_group_name" {
  type        = string
  nullable    = false
  description = "Existing resource group the AKS cluster is created in."

  validation {
    condition     = can(regex("^[-a-zA-Z0-9_.()]{0,89}[-a-zA-Z0-9_()]$", var.resource_group_name))
    error_message = "The resource_group_name must be 1 to 90 characters of letters, digits, '-', '_', '.', '(' and ')', not ending with '.'."
  }
}

variable "workspace_id" {
  type        = string
  nullable    = false
  description = "ARM id of the Azure Machine Learning workspace (Microsoft.MachineLearningServices/workspaces) the AKS cluster is attached to."

  validation {
    condition     = can(regex("(?i)^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\\.MachineLearningServices/workspaces/[^/]+$", var.workspace_id))
    error_message = "The workspace_id must look like /subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.MachineLearningServices/workspaces/<name>."
  }
}

variable "vm_size" {
  type        = string
  nullable    = false
  description = "VM size of the AKS default node pool, e.g. Standard_D4s_v3. With cluster_purpose FastProd the pool needs at least 12 vCPUs in total (vCPUs per node x min_nodes)."

  validation {
    condition     = can(regex("(?i)^(standard|basic)_[a-z0-9_-]+$", var.vm_size))
    error_message = "The vm_size must be an Azure VM size name such as Standard_D4s_v3."
  }
}

variable "min_nodes" {
  type        = number
  nullable    = false
  description = "Minimum node count of the autoscaling default node pool (>= 1: AKS system pools cannot scale to zero)."

  validation {
    condition     = var.min_nodes >= 1 && var.min_nodes <= 1000 && floor(var.min_nodes) == var.min_nodes
    error_message = "The min_nodes must be a whole number between 1 and 1000."
  }
}

variable "max_nodes" {
  type        = number
  nullable    = false
  description = "Maximum node count of the autoscaling default node pool; must be >= min_nodes (checked by a precondition on the AKS cluster)."

  validation {
    condition     = var.max_nodes >= 1 && var.max_nodes <= 1000 && floor(var.max_nodes) == var.max_nodes
    error_message = "The max_nodes must be a whole number between 1 and 1000."
  }
}

variable "cluster_purpose" {
  type        = string
  default     = "FastProd"
  nullable    = false
  description = "Purpose of the inference cluster: DevTest, FastProd (default; needs >= 12 vCPUs) or DenseProd. null is treated as FastProd."

  validation {
    condition     = contains(["DevTest", "FastProd", "DenseProd"], var.cluster_purpose)
    error_message = "The cluster_purpose must be \"DevTest\", \"FastProd\" or \"DenseProd\"."
  }
}

variable "subnet_id" {
  type        = string
  default     = null
  description = "Optional ARM id of a subnet (Microsoft.Network/virtualNetworks/subnets) for the node pool; null lets AKS create its own network."

  validation {
    condition     = var.subnet_id == null || can(regex("(?i)^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\\.Network/virtualNetworks/[^/]+/subnets/[^/]+$", var.subnet_id))
    error_message = "The subnet_id must be null or the ARM id of a subnet: /subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.Network/virtualNetworks/<vnet>/subnets/<subnet>."
  }
}

variable "tags" {
  type        = map(string)
  default     = {}
  nullable    = false
  description = "Tags set on the AKS cluster and on the inference compute. null is treated as {}."

  validation {
    condition     = length(var.tags) <= 50 && alltrue([for k, v in var.tags : length(k) >= 1 && length(k) <= 512 && length(v) <= 256])
    error_message = "There may be at most 50 tags, with keys of 1 to 512 characters and values of at most 256 characters (Azure limits)."
  }
}
