"""ECS task definitions -> a topology (placeholder)."""
SOURCE = "ecs"
def looks_like_text(text):
    return False
