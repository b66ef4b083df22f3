"""MLX side of tailor: runs in a child process (python -m mlx_backend JOB.json).

Nothing here is imported by app/; importing this package itself does not import mlx.
"""
