"""TripoSG (VAST-AI/TripoSG, code and weights MIT): DINOv2-L image tokens condition a
rectified-flow transformer that denoises latent tokens of a shape; a VAE decoder turns them
into a logit at any point, meshed where it crosses 0. It makes no colours."""
