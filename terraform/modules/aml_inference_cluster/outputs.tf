output "id" {
  description = "ARM id of the inference compute in the workspace (.../workspaces/<ws>/computes/<name>)."
  value       = azurerm_machine_learning_inference_cluster.this.id
}

output "name" {
  description = "Name of the inference compute in the workspace."
  value       = azurerm_machine_learning_inference_cluster.this.name
}

output "kubernetes_cluster_id" {
  description = "ARM id of the AKS cluster behind the inference compute."
  value       = azurerm_kubernetes_cluster.this.id
}
