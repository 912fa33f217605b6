"""The fast style network (Johnson et al. 2016): architecture, export, noise, Lightning training, inference."""
