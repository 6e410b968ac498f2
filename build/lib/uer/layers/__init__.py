"""Building blocks shared by embeddings, encoders and targets."""
