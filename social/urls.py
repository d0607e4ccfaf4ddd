"""The littlelogs seed's paths, verbs included, under /api/1/ (mounted by logsvc/urls.py)."""

from django.urls import path

from social import views

urlpatterns = [
    path("", views.ApiRootView.as_view(), name="littlelogs-root"),
    path("timelines/home/", views.HomeTimelineView.as_view(), name="littlelogs-home"),
    path("timelines/activity/", views.ActivityTimelineView.as_view(), name="littlelogs-activity"),
    path("timelines/public/", views.LogListView.as_view(), name="littlelogs-public"),
    path("users/$self/", views.SelfView.as_view(), name="littlelogs-self"),
    path("users/followed-by/<str:username>/", views.FollowedByView.as_view(), name="littlelogs-followed-by"),
    path("users/following/<str:username>/", views.FollowersView.as_view(), name="littlelogs-following"),
    path("users/<str:username>/", views.UserDetailView.as_view(), name="littlelogs-user"),
    path("users/<str:username>/follow/", views.FollowView.as_view(), name="littlelogs-follow"),
    path("users/<str:username>/unfollow/", views.UnfollowView.as_view(), name="littlelogs-unfollow"),
    path("logs/", views.LogListView.as_view(), name="littlelogs-logs"),
    path("logs/create/", views.LogCreateView.as_view(), name="littlelogs-log-create"),
    path("logs/preview/", views.LogPreviewView.as_view(), name="littlelogs-log-preview"),
    path("logs/tag/<str:tag>/", views.TagLogListView.as_view(), name="littlelogs-tag-logs"),
    path("logs/user/<str:username>/", views.UserLogListView.as_view(), name="littlelogs-user-logs"),
    path("logs/<int:log_id>/", views.LogDetailView.as_view(), name="littlelogs-log"),
    path("logs/<int:log_id>/delete/", views.LogDeleteView.as_view(), name="littlelogs-log-delete"),
    path("logs/<int:log_id>/comment/", views.CommentCreateView.as_view(), name="littlelogs-comment"),
    path("logs/<int:log_id>/comments/", views.CommentListView.as_view(), name="littlelogs-comments"),
    path("logs/<int:log_id>/likes/", views.LikeListView.as_view(), name="littlelogs-likes"),
    path("logs/<int:log_id>/like/", views.LikeView.as_view(), name="littlelogs-like"),
    path("logs/<int:log_id>/unlike/", views.UnlikeView.as_view(), name="littlelogs-unlike"),
    path("comment/<int:comment_id>/delete/", views.CommentDeleteView.as_view(), name="littlelogs-comment-delete"),
    path("tags/", views.TagListView.as_view(), name="littlelogs-tags"),
    path("tags/trending/", views.TrendingTagsView.as_view(), name="littlelogs-trending"),
    path("tags/user/<str:username>/", views.UserTagListView.as_view(), name="littlelogs-user-tags"),
]
