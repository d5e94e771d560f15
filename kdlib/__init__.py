"""kdlib: distillation as function matching, in JAX/Flax NNX.

A thin library behind the kdbook reproduction of Beyer et al., "Knowledge distillation:
A good teacher is patient and consistent" (CVPR 2022).
"""

__version__ = "0.1.0"
