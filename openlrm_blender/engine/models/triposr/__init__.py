"""TripoSR (stabilityai/TripoSR, code and weights MIT): a DINO ViT-B/16 image encoder, a
transformer over learned triplane tokens, an upsampler and a SiLU MLP queried at points."""
